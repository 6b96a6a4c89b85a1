"""Population training on a ``members x data`` device mesh (4 virtual CPU devices).

A mesh ``(m, 1)`` (members only) runs each member's solo step on one device with its whole
batch: equal to the population on one device bit for bit (tolerance 0). With a data axis
(``(2, 2)``, ``(1, 4)``) every member's gradient and metric sums are ``psum``-reduced over
the devices of its row shards, a different summation order than one device's: float32
rounding (see ``test_data_axis_layouts_equal_one_device_to_rounding``).
"""

import json

import jax
import numpy as np
import pytest
import yaml
from _compare import assert_same_run
from _workers import cli, python
from conftest import compose

from snntrain import population
from snntrain.config import ConfigError
from snntrain.population_step import choose_mesh

POP = "trainer.population"

# One population (surrogate types, alphas, seeds) trained in each layout in one subprocess
# with 4 devices; prints, per layout, each member's records, summary and final parameters.
LAYOUTS = r"""
import json, sys
sys.path.insert(0, "tests")
import jax, numpy as np
from conftest import compose
from snntrain import population
from snntrain.train import train_and_evaluate

POP = "trainer.population"
BASE = (f"{POP}.mode=zip", f"{POP}.surrogate.name=[sigmoid,arctan,sigmoid,arctan]",
        f"{POP}.surrogate.alpha=[1,4,4,2]", f"{POP}.seed=[0,1,1,2]", "trainer.log_every=1")
TIMING = {"samples_per_s", "wall_time_s", "train_time_s", "compile_time_s", "run_dir"}
out, layouts = sys.argv[1], json.loads(sys.argv[2])
res = {}
for name, extra in layouts.items():
    d = f"{out}/{name}"
    train_and_evaluate(compose(*BASE, *extra), d)
    members = {}
    for m in population.members(compose(*BASE)):
        md = f"{d}/members/{m.name}"
        records = [{k: v for k, v in json.loads(x).items() if k not in TIMING}
                   for x in open(f"{md}/metrics.jsonl").read().splitlines()]
        summary = json.load(open(f"{md}/summary.json"))
        members[m.name] = {"records": records, "device": summary.pop("device"),
                           "summary": {k: v for k, v in summary.items()
                                       if k not in TIMING | {"population"}}}
    for name_, params in population.params_of(d).items():
        members[name_]["params"] = [np.asarray(x).ravel().tolist()
                                    for x in jax.tree.leaves(params)]
    res[name] = members
print(json.dumps(res))
"""


def _layouts(tmp_path, layouts: dict[str, list[str]]) -> tuple[dict, str]:
    code = LAYOUTS.replace("sys.argv[1]", repr(str(tmp_path))).replace(
        "sys.argv[2]", repr(json.dumps(layouts)))
    p = python(code, devices=4, timeout=600)
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


@pytest.mark.slow  # ~30 s: two populations trained in a subprocess
def test_members_only_mesh_equals_one_device_exactly(tmp_path):
    """Mesh (4, 1), chosen automatically for 4 members: each device runs one member's solo
    step on its whole batch, so training records and parameters are bit-identical to the
    population on one device (tolerance 0); evaluation values to
    ``_compare.EVAL_RTOL`` (another program: see there)."""
    res, err = _layouts(tmp_path, {"one": ["trainer.parallel=none"], "auto": []})
    assert ("population: 4 members, batch 64, on a 4 x 1 mesh (members x data) of 4 of 4 "
            "devices (auto; trainer.population.mesh=[members,data] overrides)") in err
    one, mesh = res["one"], res["auto"]
    assert list(one) == list(mesh) and len(one) == 4
    for name in one:
        assert_same_run(mesh[name]["records"], one[name]["records"], name)
        assert_same_run(mesh[name]["summary"], one[name]["summary"], name, train_exact=False)
        assert mesh[name]["params"] == one[name]["params"], name
        assert mesh[name]["device"]["mesh"] == {"members": 4, "data": 1}
        assert "mesh" not in one[name]["device"] and one[name]["device"]["devices"] == 1
    first = [m["params"][0] for m in one.values()]
    assert first[0] != first[1]  # the members differ: equality above is not trivial


@pytest.mark.slow
def test_data_axis_layouts_equal_one_device_to_rounding(tmp_path):
    """Meshes (2, 2) and (1, 4): each member's batch rows are split over 2 or 4 devices and
    the per-device gradient sums added by ``psum``, in another order than one device's sum
    over the batch (~1e-7 relative per step, as for ``trainer.parallel=sharded``, tested in
    test_parallel). Adam's division by sqrt(v) and a membrane within rounding of its threshold
    can amplify that over the epoch's 22 steps (measured here: at most 6e-8 on a parameter);
    we allow 2e-5 absolute on parameters (test_parallel's bound), 1e-4 relative on losses,
    rates and gradient norms, and one example in 20 on accuracies. The counts and steps are
    exact. ``2x2 vmap`` also vmaps each device's two members (``vectorize=2``), which adds
    the rounding of batched reductions (test_population's vmapped test: the same bounds)."""
    res, _ = _layouts(tmp_path, {"one": ["trainer.parallel=none"],
                                 "2x2": [f"{POP}.mesh=[2,2]"], "1x4": [f"{POP}.mesh=[1,4]"],
                                 "2x2 vmap": [f"{POP}.mesh=[2,2]", f"{POP}.vectorize=2"]})
    one = res["one"]
    for layout, (m, d) in (("2x2", (2, 2)), ("1x4", (1, 4)), ("2x2 vmap", (2, 2))):
        for name, want in one.items():
            got = res[layout][name]
            assert got["device"]["mesh"] == {"members": m, "data": d}
            for a, b in zip(got["params"], want["params"], strict=True):
                np.testing.assert_allclose(a, b, atol=2e-5, rtol=0, err_msg=f"{layout} {name}")
            assert len(got["records"]) == len(want["records"])
            for ra, rb in zip(got["records"], want["records"], strict=True):
                assert ra.keys() == rb.keys()
                for k, v in rb.items():
                    if not isinstance(v, float):
                        assert ra[k] == v, (layout, name, k)
                        continue
                    tol = 0.05 if "accuracy" in k else 1e-4 * max(1.0, abs(v))
                    assert ra[k] == pytest.approx(v, abs=tol), (layout, name, k)


# A population on mesh (2, 2) sent SIGTERM by itself after its checkpoint at step 7, then
# resumed in the same process, against the same population uninterrupted.
RESUME = r"""
import json, os, signal, sys, threading, time
from pathlib import Path
sys.path.insert(0, "tests")
import jax, numpy as np
from conftest import compose
from snntrain import population
from snntrain.runstate import Preempted
from snntrain.train import train_and_evaluate

POP = "trainer.population"
cfg = compose(f"{POP}.surrogate.alpha=[1,4]", f"{POP}.seed=[0,1]", f"{POP}.mesh=[2,2]",
              "trainer.epochs=2", "trainer.checkpoint_every=7", "trainer.log_every=1")
out = Path(sys.argv[1])
train_and_evaluate(cfg, out / "full")

def terminate_after_checkpoint():
    ckpts = out / "cut" / "checkpoints"
    while not (ckpts.is_dir() and any(p.name.isdigit() for p in ckpts.iterdir())):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=terminate_after_checkpoint, daemon=True).start()
try:
    train_and_evaluate(cfg, out / "cut")
    raise SystemExit("not preempted")
except Preempted:
    pass
summary = train_and_evaluate(cfg, out / "cut")
res = {}
for run in ("full", "cut"):
    params = population.params_of(out / run)
    res[run] = {name: {"records": [{k: v for k, v in json.loads(x).items()
                                    if k not in ("samples_per_s", "wall_time_s", "train_time_s")}
                                   for x in (out / run / "members" / name /
                                             "metrics.jsonl").read_text().splitlines()],
                       "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(p)]}
                for name, p in params.items()}
print(json.dumps({"completed": summary["completed"], **res}))
"""


@pytest.mark.slow
def test_resume_on_a_mesh_is_bit_identical(tmp_path):
    """The whole population's sharded state is saved by orbax and restored onto the mesh:
    the resumed members equal the uninterrupted ones exactly (same mesh, same operations)."""
    p = python(RESUME.replace("sys.argv[1]", repr(str(tmp_path))), devices=4, timeout=600)
    _assert_resumed_as_uninterrupted(p, 4)


def _assert_resumed_as_uninterrupted(p, k: int) -> None:
    """``RESUME``'s output: ``k`` members resumed, each equal to the uninterrupted run's."""
    assert f"resuming {k} members from step" in p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["completed"] == k
    assert list(res["full"]) == list(res["cut"]) and len(res["full"]) == k
    for name, want in res["full"].items():
        assert res["cut"][name] == want, name


# ---- the mesh's shape: automatic choice, override, errors (no training) -------------------


@pytest.mark.parametrize("devices, members, batch, shape", [
    (4, 4, 64, (4, 1)),    # members only: no communication
    (4, 8, 64, (4, 1)),
    (4, 2, 64, (2, 2)),    # the remaining devices on the data axis
    (4, 1, 64, (1, 4)),
    (4, 3, 64, (1, 4)),    # all 4 devices (1 x 4) before more members (3 x 1, 3 devices)
    (4, 3, 30, (3, 1)),    # 30 rows do not split over 4: 3 devices
    (4, 5, 30, (1, 3)),
    (8, 6, 128, (2, 4)),
    (1, 16, 128, (1, 1)),
])
def test_automatic_mesh_shape(devices, members, batch, shape):
    assert choose_mesh(devices, members, batch) == shape


def test_mesh_override_is_checked():
    place = population.Placement(4, (2, 2))
    assert place.mesh_for(6, 64) == (2, 2)
    with pytest.raises(ConfigError, match=r"^trainer.population.mesh=\[4,1\]: 6 members do not "
                                          r"divide over 4 devices on the members axis; valid: "
                                          r"a divisor of 6$"):
        population.Placement(4, (4, 1)).mesh_for(6, 64)
    with pytest.raises(ConfigError, match=r"^trainer.population.mesh=\[1,4\]: trainer.batch_size"
                                          r"=30 does not divide over 4 devices on the data "
                                          r"axis; valid: a divisor of 30$"):
        population.Placement(4, (1, 4)).mesh_for(2, 30)
    assert population.Placement(4).mesh_for(2, 30) == (2, 2)


def test_every_groups_mesh_is_checked_before_the_first_trains():
    """chunk=2 of 3 members on a [2,1] mesh: the last group (1 member) was refused only after
    group 0 had trained, and the population was recorded as failed."""
    ms = population.members(compose(f"{POP}.seed=[0,1,2]"))
    with pytest.raises(ConfigError, match=r"^trainer.population.mesh=\[2,1\]: 1 members do not "
                       r"divide .* \(group 1 of trainer.population.chunk=2 has 1 members: "
                       r"choose a chunk or mesh that divides every group\)$"):
        population._check_later_meshes(ms, 2, False, population.Placement(2, (2, 1)), 128)
    population._check_later_meshes(ms, 1, False, population.Placement(2, (1, 2)), 128)
    population._check_later_meshes(ms, 3, False, population.Placement(2, (2, 1)), 128)  # none


AUTO_ON_MESH = r"""
import json, sys
sys.path.insert(0, "tests")
from conftest import compose
from snntrain import population

POP = "trainer.population"
cfg = compose(f"{POP}.seed=[0,1,2,3,4,5]", f"{POP}.mesh=[2,1]", f"{POP}.chunk=auto")
ms = population.members(cfg)
per_member, shared = population.build_group(
    ms, vectorize=None, by_type=False, placement=population.Placement(2, (2, 1))).memory()
out = {}
for room in (3.5, 1.5):  # room for 3 members (groups of 2, not 3), then for 1 (< 2 devices)
    population.available_memory = lambda: int((shared + room * per_member) / 0.9) + 1
    try:
        size, first = population.plan_groups(cfg, ms, say=lambda _: None)
        out[room] = [size, len(first.members), first.programs[0].mesh_shape]
    except population.ConfigError as e:
        out[room] = str(e)
print(json.dumps(out))
"""


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_chunk_auto_on_an_asked_mesh_is_checked_at_start_and_groups_divide_over_it():
    """With ``chunk=auto`` an asked mesh was not checked before the run (the groups are known
    only after compiling), and a group size that fits in memory could be one its members
    axis does not divide: now the first group (all the members) and the batch are checked
    at start-up, and the size that fits is rounded down to a multiple of the members axis."""
    with pytest.raises(ConfigError, match=r"^trainer.population.mesh=\[2,1\]: 3 members do not "
                                          r"divide over 2 devices on the members axis"):
        population.check_mesh(compose(f"{POP}.seed=[0,1,2]", f"{POP}.chunk=auto"),
                              population.Placement(2, (2, 1)))
    with pytest.raises(ConfigError, match=r"trainer.batch_size=30 does not divide over 4"):
        population.check_mesh(compose(f"{POP}.seed=[0,1]", f"{POP}.chunk=auto",
                                      "trainer.batch_size=30"), population.Placement(4, (1, 4)))
    population.check_mesh(compose(f"{POP}.seed=[0,1]", f"{POP}.chunk=auto"),
                          population.Placement(2, (2, 1)))
    out = json.loads(python(AUTO_ON_MESH, devices=2).stdout.strip().splitlines()[-1])
    assert out["3.5"] == [2, 2, [2, 1]]
    assert out["1.5"].startswith("trainer.population.mesh=[2,1]: only 1 member(s) fit in ")
    assert out["1.5"].endswith("fewer than the 2 devices of the members axis; use a smaller "
                               "members axis, model or batch")


@pytest.mark.parametrize("overrides, match", [
    ([f"{POP}.mesh=[2,2]"], r"^trainer.population.mesh=\[2,2\] uses 4 devices, but this run "
                            r"trains on 1 \(trainer.devices=null, trainer.parallel=auto\); "
                            r"members x data must be 1; on a CPU, trainer.population."
                            r"cpu_devices=<n> splits the cores into n devices "
                            r"\(n up to \d+ here\)$"),
    ([f"{POP}.mesh=[1,4]", "trainer.parallel=none"], r"uses 4 devices, but this run trains on "
                                                      r"1 \(trainer.parallel=none\); members"),
    ([f"{POP}.mesh=[2]"], r"^trainer.population.mesh=\[2\] is invalid: must be \[members, "
                          r"data\] \(two integers >= 1\) or null$"),
    ([f"{POP}.mesh=[1,0]"], r"mesh=\[1, 0\] is invalid"),
    (["trainer.parallel=pmap"], r"^trainer.parallel=pmap is not supported with a population: "
                                r"valid: auto, sharded .*, none$"),
    (["trainer.devices=3"], r"^trainer.devices=3: this process has 1 local device\(s\); "
                            r"valid: 1..1; on a CPU, trainer.population.cpu_devices=<n> "
                            r"splits the cores into n devices \(n up to \d+ here\)$"),
])
def test_bad_placement_is_one_line(overrides, match):
    with pytest.raises(ConfigError, match=match):
        population.Placement.from_config(compose(f"{POP}.seed=[0,1]", *overrides))


def test_placement_from_config():
    assert population.Placement.from_config(compose(f"{POP}.seed=[0,1]")) == \
        population.Placement(1, None)
    assert population.Placement.from_config(compose(f"{POP}.seed=[0,1]", f"{POP}.mesh=[1,1]",
                                                    "trainer.parallel=none")) == \
        population.Placement(1, (1, 1))


def test_cli_mesh_error_names_the_key(tmp_path):
    p = cli("logger=none", f"{POP}.seed=[0,1,2]", f"{POP}.mesh=[3,1]",
            f"hydra.run.dir={tmp_path}", devices=4)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == (
        "snntrain: error: trainer.population.mesh=[3,1] uses 3 devices, but this run trains "
        "on 4 (trainer.devices=null, trainer.parallel=auto); members x data must be 4")
    assert "Traceback" not in p.stderr


# ---- the CPU split into devices (trainer.population.cpu_devices) --------------------------

SPLIT = r"""
import json, os, sys
from snntrain import hostenv
split = hostenv.split_cpu(int(sys.argv[1]))
import jax
from snntrain.parallel import DataParallel
print(json.dumps({"split": split, "devices": len(jax.devices()), "ours": hostenv.cpu_split(),
                  "solo": DataParallel("auto").n_devices, "flags": os.environ["XLA_FLAGS"]}))
"""


@pytest.mark.parametrize("preset", [None, 1, 2])
def test_split_cpu_only_where_nothing_set_the_devices(preset):
    import subprocess
    import sys

    from _workers import ROOT, env

    e = env(preset)
    other = "--xla_cpu_enable_fast_math=false"  # (kept beside the count it adds)
    e["XLA_FLAGS"] = " ".join(filter(None, [e.get("XLA_FLAGS"), other]))
    p = subprocess.run([sys.executable, "-c", SPLIT, "3"], cwd=ROOT, env=e, text=True,
                       capture_output=True, timeout=120, check=True)
    got = json.loads(p.stdout.strip().splitlines()[-1])
    if preset is None:  # split: 3 devices, and a solo run keeps to one of them
        assert got == {"split": True, "devices": 3, "ours": 3, "solo": 1,
                       "flags": "--xla_cpu_enable_fast_math=false "
                                "--xla_force_host_platform_device_count=3"}
    else:  # the user's count stands, and a solo run uses every device as before
        assert got["split"] is False and got["ours"] == 0
        assert got["devices"] == got["solo"] == preset


def test_cpu_devices_setting():
    from snntrain import hostenv

    pop = f"{POP}.seed=[0,1]"
    assert population.cpu_devices(compose(pop)) == hostenv.usable_cores()
    for off in ("trainer.devices=1", "trainer.parallel=none", "trainer.parallel=sharded",
                f"{POP}.mesh=[1,1]", f"{POP}.cpu_devices=1", f"{POP}.cpu_devices=null"):
        assert population.cpu_devices(compose(pop, off)) == 1, off
    cores = hostenv.usable_cores()
    assert population.cpu_devices(compose(pop, f"{POP}.cpu_devices={cores}")) == cores
    assert population.cpu_devices(compose(pop, "trainer.devices=1", f"{POP}.cpu_devices=1")) == 1
    for bad in ("0", "two", "1.5", "true", str(cores + 1)):
        with pytest.raises(ConfigError, match=rf"^{POP}.cpu_devices=.* is invalid: must be "
                                              rf"auto, null or an integer from 1 \(one device\) "
                                              rf"to {cores} \(this process's usable cores\)$"):
            population.cpu_devices(compose(pop, f"{POP}.cpu_devices={bad}"))
    if cores > 1:
        with pytest.raises(ConfigError, match=rf"^{POP}.cpu_devices=2 and trainer.parallel=none "
                                              r"disagree \(one device\); set "):
            population.cpu_devices(compose(pop, f"{POP}.cpu_devices=2", "trainer.parallel=none"))
    # the setting is checked where each job places its members (a multirun's own values)
    with pytest.raises(ConfigError, match=rf"^{POP}.cpu_devices=0 is invalid"):
        population.Placement.from_config(compose(pop, f"{POP}.cpu_devices=0"))
    # members only, as few devices as give the fewest members per device, padded to fill them
    for devices, k, m, pad in ((2, 6, 2, 0), (4, 6, 3, 0), (2, 3, 2, 1), (2, 21, 2, 1),
                               (4, 5, 3, 1), (8, 3, 3, 0), (2, 1, 1, 0)):
        place = population.Placement(devices, members_only=True)
        assert (place.mesh_for(k, 64), place.pad_for(k)) == ((m, 1), pad), (devices, k)
    assert population.Placement(2).mesh_for(3, 64) == (1, 2)  # (a data axis: not exact)
    assert population.Placement(2).pad_for(3) == 0


def _member_runs(d) -> dict:
    timing = {"samples_per_s", "wall_time_s", "train_time_s", "compile_time_s"}
    return {m.name: [{k: v for k, v in json.loads(x).items() if k not in timing}
                     for x in (m / "metrics.jsonl").read_text().splitlines()]
            for m in sorted((d / "members").iterdir())}


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_cli_population_runs_side_by_side_on_the_split_cpu_exactly(tmp_path):
    """``python -m snntrain`` with a population and no device count in XLA_FLAGS splits the
    CPU into one device per core and puts members only on them: the members' records and
    parameters equal those of the same population on one device (tolerance 0: each device
    runs its members' steps as one device does)."""
    from snntrain import hostenv

    args = ("logger=none", "trainer.progress=false", "trainer.epochs=1", "trainer.log_every=1",
            f"{POP}.surrogate.alpha=[1,4,2]", "model.hidden=[32]",
            f"{POP}.workers=null")  # (the split, not worker processes)
    split = cli(*args, f"hydra.run.dir={tmp_path}/split", devices=None)
    one = cli(*args, f"{POP}.cpu_devices=1", f"hydra.run.dir={tmp_path}/one", devices=None)
    assert split.returncode == 0 == one.returncode, split.stderr[-2000:] + one.stderr[-2000:]
    cores = hostenv.usable_cores()
    m = population.Placement(cores, members_only=True).mesh_for(3, 128)[0]
    if m > 1:  # (2 cores: 3 members and a copy of the last on 2 devices, 2 each)
        assert (f"population: 3 members, batch 128, on a {m} x 1 mesh (members x data) of {m} "
                f"of {cores} devices (the CPU split into {cores} devices, members side by "
                f"side; {POP}.cpu_devices=1 turns it off)") in split.stderr
    assert "mesh" not in one.stderr
    runs, want = _member_runs(tmp_path / "split"), _member_runs(tmp_path / "one")
    assert list(runs) == list(want) and len(runs) == 3
    assert runs == want
    got, ref = population.params_of(tmp_path / "split"), population.params_of(tmp_path / "one")
    for name in ref:
        for a, b in zip(jax.tree.leaves(got[name]), jax.tree.leaves(ref[name]), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert runs[list(runs)[0]][-1] != runs[list(runs)[1]][-1]  # the members differ


def test_cli_cpu_devices_against_xla_flags_is_one_line(tmp_path):
    from snntrain import hostenv

    if hostenv.usable_cores() < 2:
        pytest.skip("one usable core: cpu_devices=2 is refused as more than the cores")
    p = cli("logger=none", f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=2",
            f"hydra.run.dir={tmp_path}/r")
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == (
        f"snntrain: error: {POP}.cpu_devices=2: XLA_FLAGS already sets "
        f"--xla_force_host_platform_device_count=1; unset it, or set {POP}.cpu_devices=auto")
    assert not (tmp_path / "r").exists()


# 3 members on a CPU split into 2 devices (a copy of the last member fills the second device),
# sent SIGTERM after the checkpoint at step 7 and resumed on one device (no copy), against
# the same population uninterrupted on the split CPU.
RESUME_PADDED = RESUME.replace(
    'f"{POP}.seed=[0,1]", f"{POP}.mesh=[2,2]"', 'f"{POP}.seed=[0,1,2]"').replace(
    'f"{POP}.surrogate.alpha=[1,4]", ', '').replace(
    'summary = train_and_evaluate(cfg, out / "cut")',
    'summary = train_and_evaluate(compose(*cfg_args, "trainer.parallel=none"), out / "cut")'
).replace('cfg = compose(', 'cfg_args = (').replace(
    'out = Path(sys.argv[1])', 'cfg = compose(*cfg_args)\nout = Path(sys.argv[1])')


@pytest.mark.slow
def test_padded_split_saves_the_members_only_and_resumes_on_another_layout(tmp_path):
    """Checkpoints hold the members' rows only, so a population trained with a padding copy
    on the split CPU resumes on one device (or another core count) and equals the
    uninterrupted run exactly."""
    p = python(RESUME_PADDED.replace("sys.argv[1]", repr(str(tmp_path))), devices=2,
               timeout=600, environ={"SNNTRAIN_CPU_DEVICES": "2"})  # (as the CLI splits it)
    assert "population: 3 members, batch 64, on a 2 x 1 mesh" in p.stderr
    _assert_resumed_as_uninterrupted(p, 3)


def test_cli_cpu_devices_equal_to_xla_flags_is_members_only(tmp_path):
    """cpu_devices=2 with XLA_FLAGS setting 2 devices is the asked split: members only (the
    automatic mesh put 3 members on a data axis, 1 x 2, which is not exact)."""
    p = cli("logger=none", "trainer.progress=false", "trainer.epochs=1", "model.hidden=[16]",
            f"{POP}.seed=[0,1,2]", f"{POP}.cpu_devices=2", f"hydra.run.dir={tmp_path}/r",
            devices=2)
    assert p.returncode == 0, p.stderr[-2000:]
    assert ("population: 3 members, batch 128, on a 2 x 1 mesh (members x data) of 2 of 2 "
            "devices (the CPU split into 2 devices") in p.stderr


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_cli_multirun_of_populations_splits_and_honours_each_jobs_setting(tmp_path):
    """A multirun that sweeps a population axis splits the CPU (its own config has no axis:
    the jobs' values are not in it), and each job's cpu_devices is its own: 1 trains on one
    device, auto on the split CPU."""
    from snntrain import hostenv

    p = cli("-m", "logger=none", "trainer.progress=false", "trainer.epochs=1",
            "model.hidden=[16]", f"{POP}.seed=[0,1],[2,3]", f"{POP}.cpu_devices=auto,1",
            f"{POP}.workers=null", f"hydra.sweep.dir={tmp_path}/m", devices=None)
    assert p.returncode == 0, p.stderr[-3000:]
    meshes = {}
    for job in sorted((tmp_path / "m").iterdir()):
        if not (job / "members").is_dir():
            continue
        setting = str(yaml.safe_load((job / "config.yaml").read_text())["trainer"][
            "population"]["cpu_devices"])
        for member in (job / "members").iterdir():
            device = json.loads((member / "summary.json").read_text())["device"]
            meshes.setdefault(setting, set()).add(json.dumps(device.get("mesh"), sort_keys=True))
    split = hostenv.usable_cores() > 1
    assert meshes == {"1": {"null"}, "auto": {json.dumps({"data": 1, "members": 2})
                                               if split else "null"}}


def test_a_surrogate_without_float_parameters_trains_as_a_population(tmp_path):
    """straight_through has no float parameters: its stacked arguments have no leaves (the
    padding check read the first leaf and raised IndexError for every population of it)."""
    from snntrain.experiment import params_of
    from snntrain.train import train_and_evaluate

    common = ("surrogate=straight_through", "trainer.epochs=1", "model.hidden=[16]")
    s = train_and_evaluate(compose(*common, f"{POP}.seed=[0,1]"), tmp_path / "pop")
    assert s["completed"] == 2
    train_and_evaluate(compose(*common, "seed=1"), tmp_path / "solo")
    member, solo = population.params_of(tmp_path / "pop")["1-seed=1"], params_of(tmp_path / "solo")
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(solo), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # (as trained alone)


def test_split_decision_of_a_multirun(monkeypatch):
    """A multirun splits the CPU when its jobs are populations: an axis fixed or swept, or an
    experiment that trains one; a swept cpu_devices splits into the usable cores (each job then
    places its members by its own value)."""
    from snntrain import hostenv

    calls = []
    monkeypatch.setattr(hostenv, "split_cpu", lambda n: calls.append(n) or False)
    monkeypatch.setattr(hostenv, "mark_workers", lambda n: False)  # (no worker processes)
    monkeypatch.setattr(hostenv, "usable_cores", lambda: 4)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    for cfg, swept, want in (
            (compose(), {"seed": "0,1"}, []),
            (compose(), {f"{POP}.seed": "[0,1],[2,3]"}, [4]),
            (compose(), {f"+{POP}.surrogate.beta": "[1,2],[3]"}, [4]),
            (compose(), {f"{POP}.chunk": "1,2"}, []),
            (compose(), {"experiment": "alpha_scan,quick"}, []),
            (compose(), {"experiment": "quick,alpha_scan_population"}, [4]),
            (compose(f"{POP}.seed=[0,1]", "trainer.devices=2"), {}, [1]),
            (compose(f"{POP}.seed=[0,1]", "trainer.devices=2"),
             {f"{POP}.cpu_devices": "2,1"}, [4])):
        calls.clear()
        population.split_cpu(cfg, swept)
        assert calls == want, (swept, calls)


def test_worker_processes_replace_the_split_where_it_would_be_automatic(monkeypatch):
    """``trainer.population.workers=auto`` (the default): where the command line would split
    the CPU on its own, it chooses one worker process per core instead (and does not split);
    an asked cpu_devices, a device count in XLA_FLAGS or workers=null keep the split's
    rules."""
    from snntrain import hostenv

    splits, marks = [], []
    monkeypatch.setattr(hostenv, "split_cpu", lambda n: splits.append(n) or False)
    monkeypatch.setattr(hostenv, "mark_workers", lambda n: marks.append(n) or True)
    monkeypatch.setattr(hostenv, "usable_cores", lambda: 4)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    for overrides, swept, want_marks, want_splits in (
            ((f"{POP}.seed=[0,1]",), {}, [4], []),
            ((), {f"{POP}.seed": "[0,1],[2,3]"}, [4], []),
            ((f"{POP}.seed=[0,1]", f"{POP}.workers=null"), {}, [], [4]),
            ((f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=2"), {}, [], [2]),
            ((f"{POP}.seed=[0,1]",), {f"{POP}.cpu_devices": "2,1"}, [], [4]),
            ((f"{POP}.seed=[0,1]", "trainer.devices=2"), {}, [], [1]),
            # a sweep over how the devices are used: the jobs choose theirs on the split CPU
            ((f"{POP}.seed=[0,1]",), {"trainer.devices": "1,2"}, [], [4]),
            ((f"{POP}.seed=[0,1]",), {f"{POP}.workers": "auto,null"}, [], [4])):
        splits.clear()
        marks.clear()
        population.split_cpu(compose(*overrides), swept)
        assert (marks, splits) == (want_marks, want_splits), (overrides, swept)
    monkeypatch.setenv("XLA_FLAGS", f"{hostenv.DEVICE_FLAG}=2")
    marks.clear()
    population.split_cpu(compose(f"{POP}.seed=[0,1]"), {})
    assert marks == []
    # what a worker count means at training time: auto follows the mark, from Python 1
    monkeypatch.setattr(hostenv, "marked_workers", lambda: 2)
    assert population.worker_count(compose(f"{POP}.seed=[0,1]")) == 2
    assert population.worker_count(compose(f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=1")) == 1
    assert population.cpu_devices(compose(f"{POP}.seed=[0,1]")) == 1  # (the cores: workers')
    monkeypatch.setattr(hostenv, "marked_workers", lambda: 1)
    assert population.worker_count(compose(f"{POP}.seed=[0,1]")) == 1


def test_asked_cpu_devices_without_the_split_is_one_line(monkeypatch):
    """From Python, JAX has started before snntrain could split the CPU: an integer
    cpu_devices was ignored without a word; with XLA_FLAGS setting another count, a multirun's
    job trained on the automatic (data-axis) mesh."""
    from snntrain import hostenv

    if hostenv.usable_cores() < 2:
        pytest.skip("one usable core: cpu_devices=2 is refused as more than the cores")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv(hostenv.SPLIT_MARK, raising=False)
    cfg = compose(f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=2")
    with pytest.raises(ConfigError, match=rf"^{POP}.cpu_devices=2: JAX started before the CPU "
                                          r"could be split \(from Python, call snntrain.hostenv"
                                          r".split_cpu\(2\) before anything starts JAX\); "
                                          r"valid here: auto, 1$"):
        population.Placement.from_config(cfg)
    monkeypatch.setenv("XLA_FLAGS", f"{hostenv.DEVICE_FLAG}=4")
    with pytest.raises(ConfigError, match=rf"^{POP}.cpu_devices=2: XLA_FLAGS already sets "):
        population.Placement.from_config(cfg)
    assert population.Placement.from_config(compose(f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=1")
                                            ) == population.Placement(1)
