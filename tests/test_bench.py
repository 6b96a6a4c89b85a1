"""scripts/bench.py: FLOP counts by hand, the hand-written conv formulations are exact, and
``--quick --json`` writes the documented keys with consistent ratios."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402


def test_flop_counts_by_hand():
    # the bench's docstring: one training step is 1.31 GFLOP (mlp) and 13.0 GFLOP (conv)
    assert bench.dense_flop(128, 25, [784, 128, 10]) == 2 * 128 * 25 * (
        2 * 784 * 128 + 3 * 128 * 10
    )
    assert round(bench.dense_flop(128, 25, [784, 128, 10]) / 1e9, 2) == 1.31
    assert round(bench.conv_flop(64, 25, 28, 1, [(5, 12), (5, 64)], 2, 10) / 1e9, 1) == 13.0


def test_hand_written_conv_formulations_equal_lax_conv_and_reduce_window():
    errors = bench.check_conv_formulations()
    assert set(errors) == set(bench.CONV_FORMULATIONS)
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.slow
def test_quick_json_has_the_documented_keys(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--workloads", "digits"]
    res = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["gemm_gflops"] > 0
    d = got["workloads"]["digits"]
    for key in (
        "steps_per_s",
        "samples_per_s",
        "frac_peak",
        "ref_steps_per_s",
        "compile_s",
        "peak_rss_mb",
    ):
        assert d[key] > 0, key
    assert d["samples_per_s"] == pytest.approx(d["steps_per_s"] * d["batch_size"])
    flop = bench.dense_flop(128, 25, [64, 256, 10])
    assert d["flop_per_step"] == flop
    assert d["frac_peak"] == pytest.approx(d["steps_per_s"] * flop / 1e9 / got["gemm_gflops"])
    assert d["ratio_vs_ref"] == pytest.approx(d["steps_per_s"] / d["ref_steps_per_s"])
    # SNNTRAIN_MALLOC=auto (the default): the malloc trial ran on the workload's own steps
    assert d["malloc"]["choice"] in ("default", "heap")
    assert set(d["malloc"]["ms"]) == {"default", "heap"} and min(d["malloc"]["ms"].values()) > 0


@pytest.mark.slow
def test_population_section_times_members_against_solo_steps(tmp_path):
    """Issue 16's benchmark is a section of scripts/bench.py (also scripts/bench_population.py)."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--sections", "population",
           "--population-ks", "1,4", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())["population"]
    steps = {(r["layout"], r["K"]): r for r in rows if r["section"] == "steps"}
    from snntrain import hostenv
    from snntrain.workers import AUTO_MAX

    split = {("split", 4)} if hostenv.usable_cores() > 1 else set()
    n = min(hostenv.usable_cores(), AUTO_MAX)  # the CLI's workers (K a multiple of them)
    pool = {("workers", 4)} if n > 1 and 4 % n == 0 else set()
    assert set(steps) == {("solo", 1), ("map", 1), ("map", 4), ("vmap", 4)} | split | pool
    cores = hostenv.usable_cores()
    for r in steps.values():  # the CLI's layout on a CPU: members only, over the split CPU
        want = [max(m for m in range(1, cores + 1) if r["K"] % m == 0), 1]
        assert r.get("mesh", [1, 1]) == (want if r["layout"] == "split" else [1, 1]), r
    solo = steps["solo", 1]["ms_per_member_step"]
    for (layout, _k), r in steps.items():
        if layout != "solo":
            assert r["gain_wall"] == pytest.approx(solo / r["ms_per_member_step"])
    types = [r for r in rows if r["section"] == "types"]
    assert {(r["layout"], r["programs"]) for r in types} == {
        ("map", "switch"), ("map", "by type"), ("vmap", "switch"), ("vmap", "by type")}


def test_bad_arguments_are_argparse_one_liners(capsys):
    """An unknown section was skipped without a word; an unknown workload or population size
    ended in a traceback (KeyError, ConfigError)."""
    import bench_peers
    import bench_population
    import bench_synops

    for main, args, message in (
            (bench.main, ["--sections", "workloads,bogus"], "argument --sections: unknown "
             "'bogus'; valid: a comma-separated subset of workloads,synops,memory,devices,"),
            (bench.main, ["--population-ks", "4,-1"], "argument --population-ks: '4,-1': "
             "must be comma-separated integers >= 1"),
            (bench.main, ["--workloads", "mlp,mlp2048"], "argument --workloads: unknown "
             "'mlp2048'; valid: a comma-separated subset of mlp,conv,digits"),
            (bench_population.main, ["--ks", "1,0"], "argument --ks: '1,0': must be "
             "comma-separated integers >= 1"),
            (bench_population.main, ["--sections", "steps,e3e"], "unknown 'e3e'"),
            # (0 or -1 seconds timed 5 calls and printed a meaningless ratio; tester)
            (bench_synops.main, ["--seconds", "-1"], "argument --seconds: '-1': must be a "
             "number > 0"),
            (bench_peers.main, ["--seconds", "0"], "argument --seconds: '0': must be a number "
             "> 0")):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_malloc_probe_bad_arguments_are_one_line():
    """An unknown workload was a KeyError traceback, a bad mallopt JSON a JSONDecodeError."""
    probe = [sys.executable, str(ROOT / "scripts" / "malloc_probe.py")]
    for args, code, line in (
            (["foo", "2", "1"], 2, "usage: python scripts/malloc_probe.py WORKLOAD STEPS "
             "ROUNDS [mallopt JSON] (WORKLOAD: one of mlp, conv, digits, population-vmap, "
             "population-map; STEPS, ROUNDS: integers >= 1)"),
            (["digits", "8", "2", "notjson"], 1, "malloc_probe.py: 'notjson' is no JSON object "
             "of integer mallopt pairs, e.g. '{\"-4\": 0, \"-1\": 2147483647, \"-8\": 1}'")):
        res = subprocess.run([*probe, *args], capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stderr.strip()) == (code, line)


def test_a_bad_malloc_switch_is_one_line(capsys, monkeypatch):
    """SNNTRAIN_HUGEPAGES=yes (refused since the CLI checks it) ended bench.py, bench_peers.py
    and bench_population.py in a ConfigError traceback."""
    import bench_peers
    import bench_population

    monkeypatch.setenv("SNNTRAIN_HUGEPAGES", "yes")
    monkeypatch.delenv("SNNTRAIN_MALLOC", raising=False)
    for main in (bench.main, bench_peers.main, bench_population.main):
        with pytest.raises(SystemExit) as e:
            main([])
        assert e.value.code == 2
        assert capsys.readouterr().err.endswith(
            ": error: SNNTRAIN_HUGEPAGES='yes' is not 1 or 0 (the older switch; or set "
            "SNNTRAIN_MALLOC to one of auto, heap, default, hugepages)\n")


def test_overrides_are_checked_against_the_chosen_workloads(capsys):
    """--help's own example (model.conv_method=lax) was refused against the MLP's config, and
    T=5 ran with T=25's FLOP count (2.5x the GEMM peak) and reference."""
    args = bench.parse_args(["--workloads", "conv", "--override", "model.conv_method=lax"])
    assert args.override == ["model.conv_method=lax"]
    for argv, said in ((["--override", "model.conv_method=lax"], "(workload mlp): "
                        "model.conv_method is not a config key"),
                       (["--override", "T=5"], "T sets the workload's shape")):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert said in capsys.readouterr().err
