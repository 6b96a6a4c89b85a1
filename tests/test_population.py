"""Population training: members equal their solo runs, records, divergence, resume, errors.

Members run one after another inside the compiled step (``lax.map``, the CPU default), so each
member computes exactly its solo run's operations: the comparisons with solo runs are exact
(tolerance 0). ``vmap``-ed members (``vectorize > 1``) sum reductions in another order, so that
test allows float32 rounding (see ``test_vmapped_members_match_solo_to_rounding``).
"""

import json
import shutil
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from _compare import assert_same_run
from _wandb import finished_wandb_file, wandb_records
from _workers import cli, popen
from conftest import compose
from omegaconf import OmegaConf

from snntrain import population, report
from snntrain.config import ConfigError
from snntrain.train import params_of, train_and_evaluate

TIMING = {"samples_per_s", "wall_time_s", "train_time_s", "compile_time_s", "run_dir"}
POP = "trainer.population"


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def _summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in s.items() if k not in TIMING | {"population"}}


def _member_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "members").iterdir(), key=lambda p: int(p.name.split("-")[0]))


def _assert_params_equal(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ---- which members (no training) ---------------------------------------------------------


def test_grid_members_are_solo_configs():
    cfg = compose(f"{POP}.surrogate.name=[sigmoid,arctan]", f"{POP}.surrogate.alpha=[1,4]",
                  f"{POP}.seed=[0,2]", "surrogate=fast_sigmoid")
    ms = population.members(cfg)
    assert len(ms) == 8
    assert [m.values for m in ms[:3]] == [
        {"surrogate": "sigmoid", "surrogate.alpha": 1, "seed": 0},
        {"surrogate": "sigmoid", "surrogate.alpha": 1, "seed": 2},
        {"surrogate": "sigmoid", "surrogate.alpha": 4, "seed": 0}]
    assert ms[5].name == "5-surrogate=arctan,surrogate.alpha=1,seed=2"
    solo = compose("surrogate=arctan", "surrogate.alpha=1", "seed=2")
    assert OmegaConf.to_container(ms[5].cfg) == OmegaConf.to_container(solo)


def test_the_issues_surrogate_axis_spelling_is_the_name_axis():
    """``trainer.population.surrogate=[...]`` (issue 16's own example) stopped with Hydra's
    "Cannot merge DictConfig with ListConfig"; the command line reads it as ``.name``."""
    argv = ["-m", f"{POP}.surrogate=[sigmoid,softsign,arctan]", f"+{POP}.surrogate=[erf]",
            f"{POP}.surrogate.alpha=[0.5,1,2,4,8]", f"{POP}.seed=[0,1,2]", "surrogate=erf"]
    assert population.with_aliases(argv) == [
        "-m", f"{POP}.surrogate.name=[sigmoid,softsign,arctan]", f"{POP}.surrogate.name=[erf]",
        *argv[3:]]
    # a dict for the node is the node (it was rewritten to .name={...} and refused)
    as_dict = f"{POP}.surrogate={{name:[sigmoid],alpha:[2,3]}}"
    assert population.with_aliases([as_dict]) == [as_dict]
    assert [m.values for m in population.members(compose(as_dict))] == [
        {"surrogate": "sigmoid", "surrogate.alpha": 2}, {"surrogate": "sigmoid",
                                                         "surrogate.alpha": 3}]
    ms = population.members(compose(*population.with_aliases(argv[1:2] + argv[3:5])))
    assert len(ms) == 45 and ms[-1].values == {
        "surrogate": "arctan", "surrogate.alpha": 8, "seed": 2}


def test_a_value_set_twice_is_refused(monkeypatch):
    """A population axis replaced a value set on the command line or swept by -m/Optuna
    without a word (Optuna then recorded an lr nobody trained); under model.neuron.tau a beta
    axis gave identical members labelled with different betas."""
    axis = f"{POP}.surrogate.alpha=[1,4]"
    monkeypatch.setattr(population, "_task_overrides", lambda _cfg: ["surrogate.alpha=2", axis])
    with pytest.raises(ConfigError, match=r"^surrogate.alpha is set twice: by the override "
                       rf"surrogate.alpha=2 and by the population axis {POP}.surrogate.alpha"):
        population.members(compose("surrogate.alpha=2", axis))
    monkeypatch.setattr(population, "_task_overrides", lambda _cfg: ["seed=3", "surrogate=erf"])
    with pytest.raises(ConfigError, match=rf"^seed is set twice: .* axis {POP}.seed, which"):
        population.members(compose("seed=3", f"{POP}.seed=[0,1]"))
    with pytest.raises(ConfigError, match=rf"^surrogate is set twice: .* {POP}.surrogate.name"):
        population.members(compose("surrogate=erf", f"{POP}.surrogate.name=[sigmoid]"))
    assert len(population.members(compose("surrogate=erf", axis))) == 2  # other keys: fine
    # surrogate.alpha=3 under a surrogate axis: each member took its surrogate's own alpha
    # (4 and 1), the population's config.yaml said 3 (and -m surrogate.alpha=1,8 trained the
    # same population twice)
    names = f"{POP}.surrogate.name=[sigmoid,arctan]"
    monkeypatch.setattr(population, "_task_overrides", lambda _cfg: ["surrogate.alpha=3", names])
    with pytest.raises(ConfigError, match=rf"^surrogate.alpha=3 would be dropped: the population "
                       rf"axis {POP}.surrogate.name gives every member its surrogate's own "
                       rf"config; vary it as an axis \({POP}.surrogate.alpha=\[3\]\)"):
        population.members(compose("surrogate.alpha=3", names))
    monkeypatch.setattr(population, "_task_overrides",
                        lambda _cfg: ["surrogate.normalize=true", names])  # carried over: fine
    assert [m.cfg.surrogate.normalize for m in population.members(
        compose("surrogate.normalize=true", names))] == [True, True]
    monkeypatch.setattr(population, "_task_overrides", lambda _cfg: [])
    with pytest.raises(ConfigError, match=rf"^{POP}.neuron.beta cannot vary while "
                       r"model.neuron.tau=10 sets beta"):
        population.members(compose("model.neuron.tau=10", f"{POP}.neuron.beta=[0.5,0.9]"))


def test_a_key_a_sweep_varies_and_an_axis_sets_is_refused_before_the_sweep():
    """-m surrogate.alpha=1,8 beside a surrogate.name axis trained the same population twice,
    and an Optuna search sampling an axis's key failed its 30 trials one by one."""
    names, alphas = f"{POP}.surrogate.name=[sigmoid,arctan]", f"{POP}.surrogate.alpha=[1,2]"
    err = population.sweep_conflict(["-m", "surrogate.alpha=1,8", names])
    assert str(err) == (f"surrogate.alpha=1,8 varies surrogate.alpha across the sweep's jobs, "
                        f"and the population axis {POP}.surrogate.name sets it in every member, "
                        "so every job would train the same population; vary it in one of the "
                        "two only")
    err = population.sweep_conflict(["-m", "hparams_search=optuna", alphas])
    assert str(err).startswith("surrogate.alpha (sampled by hparams_search=optuna) varies "
                               f"surrogate.alpha across the sweep's jobs, and the population "
                               f"axis {POP}.surrogate.alpha")
    assert "seed=0,1 varies seed" in str(population.sweep_conflict(
        ["-m", "seed=0,1", f"{POP}.seed=[0,1]"]))
    for fine in (["-m", "model.hidden=[16],[32]", f"{POP}.seed=[0,1]"],
                 ["-m", "surrogate=sigmoid,arctan", alphas],
                 ["-m", "hparams_search=optuna", f"{POP}.seed=[0,1,2]"], [alphas]):
        assert population.sweep_conflict(fine) is None, fine


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_a_sweep_or_an_axis_an_experiment_file_sets_is_refused_before_the_sweep(tmp_path):
    """-m experiment=alpha_scan 'trainer.population.seed=[0,1]' (the sweep in the experiment's
    hydra.sweeper.params) and -m experiment=alpha_scan_population seed=0,1 (the axis in the
    file) started every job, and each failed ("seed is set twice")."""
    for args, want in (
            (("experiment=alpha_scan", f"{POP}.seed=[0,1]"),
             "seed=0,1,2 (hydra.sweeper.params) varies seed across the sweep's jobs, and the "
             f"population axis {POP}.seed sets it in every member"),
            (("experiment=alpha_scan_population", "seed=0,1"),
             f"seed=0,1 varies seed across the sweep's jobs, and the population axis {POP}.seed "
             "sets it in every member")):
        p = cli("-m", *args, "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}")
        assert p.returncode == 2, p.stderr[-2000:]
        assert p.stderr.strip().splitlines()[-1].startswith(f"snntrain: error: {want}")
        assert not (tmp_path / "sweep").exists()
    # the command line's seed=0 replaces the file's sweep of seed: not "varies seed"
    from omegaconf import OmegaConf

    config = OmegaConf.create({"trainer": {"population": {"seed": [0, 1]}}, "hydra": {
        "sweeper": {"params": {"seed": "0,1,2", "surrogate.alpha": "1,2"}},
        "overrides": {"task": ["experiment=alpha_scan", "seed=0"]}}})
    assert population.sweep_conflict_in(config) is None


def test_params_of_falls_back_over_an_unreadable_newest_checkpoint(tmp_path):
    """A corrupt newest meta made population.params_of (and the export of a member) end in a
    JSONDecodeError traceback; a solo run's falls back to the previous checkpoint."""
    from snntrain.checkpoint import CheckpointError

    run = tmp_path / "pop"
    train_and_evaluate(compose(f"{POP}.seed=[0,1]", "trainer.checkpoint_every=4",
                               "trainer.keep_checkpoints=10"), run)
    steps = sorted(int(d.name) for d in (run / "checkpoints").iterdir() if d.name.isdigit())
    (run / "checkpoints" / str(steps[-1]) / "meta" / "metadata").write_text("{bad")
    assert sorted(population.params_of(run)) == ["0-seed=0", "1-seed=1"]
    for step in steps:
        (run / "checkpoints" / str(step) / "meta" / "metadata").write_text("{bad")
    with pytest.raises(CheckpointError, match=r"^no readable checkpoint in .*checkpoints \("
                       rf"{len(steps)} found\)$"):
        population.params_of(run)


def test_a_sweeper_receives_the_best_configurations_mean_over_seeds():
    """Optuna over a population with a seed axis optimised the luckiest seed (the best
    member's value); it now gets what the report selects: the best mean over seeds."""
    def row(alpha, seed, val, test, loss=1.0):
        return {"member": f"a{alpha}s{seed}", "values": {"surrogate.alpha": alpha, "seed": seed},
                "best_val_accuracy": val, "test_accuracy": test, "val_loss": loss}

    done = [row(1, 0, 0.9, 0.85, 0.2), row(1, 1, 0.5, 0.45, 0.9), row(4, 0, 0.8, 0.7, 0.5),
            row(4, 1, 0.8, 0.9, 0.5), row(4, 1, 0.8, 0.9, 0.5)]  # seed 1 of alpha 4 twice
    best = population._best_configuration(done, "best_val_accuracy")
    assert best == {"best_val_accuracy": pytest.approx(0.8), "test_accuracy": pytest.approx(0.8),
                    "best_member": "a4s0", "best_configuration": "surrogate.alpha=4",
                    "best_seeds": 2}
    best = population._best_configuration(done, "val_loss")  # a loss: the lowest mean
    assert best["val_loss"] == pytest.approx(0.5) and best["best_configuration"] == (
        "surrogate.alpha=4")
    seeds_only = [{**r, "values": {"seed": r["values"]["seed"]}} for r in done[:2]]
    best = population._best_configuration(seeds_only, "best_val_accuracy")
    assert best["best_val_accuracy"] == pytest.approx(0.7) and best["best_seeds"] == 2
    assert best["best_configuration"] == "(only the seed varies)"
    assert population._best_configuration([], "best_val_accuracy")["best_val_accuracy"] is None


def test_a_tie_for_the_best_configuration_goes_as_in_the_report(tmp_path):
    """Two configurations with the same mean (common on digits' 144 validation examples):
    summary.json named the first in member order (sigmoid, quoting its test accuracy), the
    report's verdict the first in its table (arctan). Both now select arctan."""
    from test_report import write_run

    from snntrain import compare
    from snntrain import runs as runs_lib

    done = []
    for i, (name, seed, val, test) in enumerate([("sigmoid", 0, 0.25, 0.3), ("sigmoid", 1, 0.5,
                                                  0.3), ("arctan", 0, 0.5, 0.2),
                                                 ("arctan", 1, 0.25, 0.2)]):
        member = f"{i}-surrogate.name={name},seed={seed}"
        write_run(tmp_path / "members" / member, {"name": name, "alpha": 2.0}, seed, [val],
                  [test], {"lif0": 0.1}, 1.0)
        done.append({"member": member, "values": {"surrogate.name": name, "seed": seed},
                     "best_val_accuracy": val, "test_accuracy": test})
    assert population._best_configuration(done, "best_val_accuracy")[
        "best_configuration"] == "surrogate.name=sigmoid"  # member order, without the report's
    best = population._best_configuration(
        done, "best_val_accuracy", lambda: population._report_order(tmp_path, done,
                                                                    "best_val_accuracy"))
    assert best["best_configuration"] == "surrogate.name=arctan"
    assert best["test_accuracy"] == pytest.approx(0.2)
    # optimize_metric=best_val_epoch: the report ranks by best_val_accuracy (a note says so),
    # and the population's best configuration follows it (it ranked by the epoch)
    for r in done:
        r["best_val_epoch"] = 1 if r["values"]["surrogate.name"] == "sigmoid" else 0
    assert population._best_configuration(
        done, "best_val_epoch", lambda: population._report_order(tmp_path, done,
                                                                 "best_val_epoch"))[
        "best_configuration"] == "surrogate.name=arctan"
    loaded = [runs_lib.load_run(tmp_path / "members" / r["member"]) for r in done]
    ranked = compare.rank(runs_lib.group_runs(loaded)[1], compare.Metric("best_val_accuracy"))
    assert ranked[0].row.label == "arctan, α=2" and ranked[1].tied


def test_zip_pairs_and_other_surrogate_parameters():
    cfg = compose(f"{POP}.mode=zip", f"{POP}.surrogate.name=[boxcar,boxcar]",
                  f"+{POP}.surrogate.width=[0.5,2]", f"{POP}.optimizer.lr=[1e-3,3e-3]",
                  f"{POP}.neuron.beta=[0.8,0.95]")
    ms = population.members(cfg)
    assert [m.values for m in ms] == [
        {"surrogate": "boxcar", "surrogate.width": 0.5, "optimizer.lr": 1e-3,
         "model.neuron.beta": 0.8},
        {"surrogate": "boxcar", "surrogate.width": 2, "optimizer.lr": 3e-3,
         "model.neuron.beta": 0.95}]
    c = ms[1].cfg
    assert (c.surrogate.name, c.surrogate.width, c.surrogate.height) == ("boxcar", 2, 1.0)
    assert (c.optimizer.lr, c.model.neuron.beta) == (3e-3, 0.95)
    assert c.trainer.population.optimizer.lr is None
    assert not population.is_population(c) and population.is_population(cfg)


def test_no_population_by_default():
    assert not population.is_population(compose())
    assert population.axes(compose()) == {}


@pytest.mark.parametrize("override, match", [
    (f"+{POP}.T=[5,10]", rf"{POP}.T cannot vary inside one program .* -m T="),
    (f"+{POP}.model.hidden=[[16],[32]]", rf"{POP}.model.hidden cannot vary .*multirun"),
    (f"+{POP}.dataset.name=[digits,mnist]", rf"{POP}.dataset.name cannot vary"),
    (f"+{POP}.trainer.batch_size=[32,64]", rf"{POP}.trainer.batch_size cannot vary"),
    (f"+{POP}.neuron.tau=[5,10]", rf"^{POP}.neuron.tau is not an axis: it only sets beta = "
                                  rf"exp\(-dt/tau\); vary {POP}.neuron.beta .* -m "
                                  rf"model.neuron.tau="),
    # an empty axis was skipped: the run trained one solo config without a word
    (f"{POP}.surrogate.alpha=[]", rf"{POP}.surrogate.alpha=\[\] is empty: give it at least one "
                                  "value, or null for no axis"),
    # a dict was flattened into the axis "lr.a", which "cannot vary inside one program"
    (f"{POP}.optimizer.lr={{a:1}}", rf"^{POP}.optimizer.lr={{'a': 1}} is invalid: must be a "
                                    "list of values$"),
    (f"{POP}.surrogate.alpha={{a:1}}", rf"^{POP}.surrogate.alpha={{'a': 1}} is invalid"),
])
def test_axes_that_cannot_vary_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        population.members(compose(f"{POP}.seed=[0,1]", override))


def test_command_line_axes_that_cannot_vary_name_the_key_before_hydra():
    # Without "+" Hydra alone would say "Key 'T' is not in struct" and suggest appending it.
    err = population.override_error(["logger=none", f"{POP}.T=[5,10]"])
    assert str(err).startswith(f"{POP}.T cannot vary inside one program") and "-m T=" in str(err)
    err = population.override_error([f"{POP}.model.hidden=[[16],[32]]"])
    assert "-m model.hidden=<a>,<b>" in str(err)
    err = population.override_error([f"+{POP}.chunks=2"])
    assert str(err).startswith(f"{POP}.chunks is neither a population setting nor an axis")
    assert "chunk" in str(err) and "neuron.beta" in str(err)
    # shipped keys, surrogate parameters (Hydra's "+" hint is right for them) and other keys
    assert population.override_error([f"{POP}.seed=[0,1]", f"{POP}.chunk=2",
                                      f"{POP}.surrogate.beta=[1,2]", f"{POP}.neuron.beta=[0.5]",
                                      "T=10", f"{POP}.surrogate.alpha=[1]"]) is None


def test_bad_population_values():
    with pytest.raises(ConfigError, match=r"mode=zip needs lists of equal length; got "
                                          r"surrogate.alpha: 2, seed: 3"):
        population.members(compose(f"{POP}.mode=zip", f"{POP}.surrogate.alpha=[1,2]",
                                   f"{POP}.seed=[0,1,2]"))
    with pytest.raises(ConfigError, match=r"mode='cross' is invalid: must be one of grid, zip"):
        population.members(compose(f"{POP}.mode=cross", f"{POP}.seed=[0,1]"))
    with pytest.raises(ConfigError, match=r"surrogate.name='nope' is invalid: must be one of "
                                          r"arctan, boxcar"):
        population.members(compose(f"{POP}.surrogate.name=[sigmoid,nope]"))
    ms = population.members(compose(f"{POP}.surrogate.name=[sigmoid,straight_through]",
                                    f"{POP}.surrogate.alpha=[2]"))
    with pytest.raises(ConfigError, match=r"member 1-surrogate=straight_through,surrogate."
                                          r"alpha=2: unknown key surrogate.alpha; valid: "
                                          r"normalize"):
        population.build_group(ms, vectorize=1, by_type=False)
    ms = population.members(compose("surrogate=squarewave_fourier_series",
                                    f"+{POP}.surrogate.n=[2,3]"))
    with pytest.raises(ConfigError, match=r"squarewave_fourier_series surrogates differ in "
                       r"surrogate.n \(2 and 3\), which fixes the compiled program; use a "
                       r"multirun for it \(python -m snntrain -m surrogate.n=...\)$"):
        population.build_group(ms, vectorize=1, by_type=False)
    ms = population.members(compose(f"+{POP}.surrogate.normalize=[true,false]"))
    with pytest.raises(ConfigError, match=r"fast_sigmoid surrogates differ in "
                       r"surrogate.normalize \(true and false\)"):
        population.build_group(ms, vectorize=1, by_type=False)


def test_memory_check_refuses_with_numbers_or_chunks(monkeypatch):
    cfg = compose(f"{POP}.seed=[0,1,2,3]")
    ms = population.members(cfg)
    built, build = {}, population.build_group

    def build_once(part, **kw):  # the same groups, compiled once
        key = tuple(m.name for m in part)
        built[key] = built.get(key) or build(part, **kw)
        return built[key]

    monkeypatch.setattr(population, "build_group", build_once)
    per_member, shared = build_once(ms, vectorize=None, by_type=False).memory()
    assert per_member > 0 and shared > 0
    budget = shared + 2.5 * per_member  # room for 2 of the 4 members
    monkeypatch.setattr(population, "available_memory", lambda: int(budget / 0.9) + 1)
    with pytest.raises(ConfigError, match=r"4 members need about .* MiB for their training "
                                          r"step \(.* MiB per member \+ .* MiB shared\), but "
                                          rf"only .* MiB is available; set {POP}.chunk=2"):
        population.plan_groups(cfg, ms)
    messages = []
    size, first = population.plan_groups(compose(f"{POP}.seed=[0,1,2,3]", f"{POP}.chunk=auto"),
                                         ms, say=messages.append)
    assert size == 2 and len(first.members) == 2 and "groups of 2" in messages[0]


def test_the_memory_check_counts_the_other_workers_data(monkeypatch):
    """Each worker process loads its members' data; the check counted the compiled steps
    only. Members of one seed share their data, counted once."""
    cfg = compose(f"{POP}.seed=[0,1]")
    group = population.build_group(population.members(cfg), vectorize=1, by_type=False)
    one = sum(group.exps[0].data.held().values())
    assert one > 0 and group.data_bytes() == 2 * one  # (two seeds: two splits of digits)
    same = population.build_group(population.members(compose(
        f"{POP}.surrogate.name=[sigmoid,arctan]")), vectorize=1, by_type=False)
    assert same.exps[0].data is same.exps[1].data and same.data_bytes() == one
    per_member, shared = group.memory()
    steps = 2 * (shared + 2 * per_member)  # two workers' steps, each of 2 members
    monkeypatch.setattr(population, "available_memory",
                        lambda: int((steps + group.data_bytes() / 2) / 0.9))
    assert population._members_that_fit(group, 2, 1) is None
    with pytest.raises(ConfigError, match=r"2 members need about .* MiB for their training "
                                          r"step \(2 workers' groups at once\) \(.* MiB per "
                                          r"member \+ .* MiB shared, the other workers' data "
                                          r".* MiB\), but only"):
        population._members_that_fit(group, 2, 2)
    monkeypatch.setattr(population, "available_memory",
                        lambda: int((steps + 1.01 * group.data_bytes()) / 0.9))
    assert population._members_that_fit(group, 2, 2) is None


@pytest.mark.parametrize("population_experiment, multirun_experiment", [
    pytest.param("surrogate_comparison_population", "surrogate_comparison", marks=pytest.mark.slow),
    ("alpha_scan_population", "alpha_scan"),
])
def test_population_experiments_have_the_multiruns_members(population_experiment,
                                                           multirun_experiment):
    """Every member config equals the config of one job of the multirun experiment."""
    from test_sweeps import expand_sweep

    ms = population.members(compose(f"experiment={population_experiment}", tiny=False))
    jobs = expand_sweep([f"experiment={multirun_experiment}"])
    want = sorted(json.dumps(OmegaConf.to_container(compose(
        f"experiment={multirun_experiment}", *job, tiny=False)), sort_keys=True) for job in jobs)
    got = sorted(json.dumps(OmegaConf.to_container(m.cfg), sort_keys=True) for m in ms)
    assert len(ms) == len(jobs) and got == want


def test_a_population_experiment_trains(tmp_path):
    cfg = compose("experiment=alpha_scan_population", f"{POP}.seed=[0]", "trainer.epochs=1",
                  "T=4", "model.hidden=[16]")
    summary = train_and_evaluate(cfg, tmp_path)
    assert summary["status"] == "completed" and summary["completed"] == 7
    assert 0.0 <= summary["test_accuracy"] <= 1.0


# ---- training -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A population of surrogate types, alphas and seeds (zip: 3 members), its solo runs."""
    root = tmp_path_factory.mktemp("mixed")
    pop = compose(f"{POP}.mode=zip", f"{POP}.surrogate.name=[sigmoid,arctan,sigmoid]",
                  f"{POP}.surrogate.alpha=[1,4,4]", f"{POP}.seed=[0,1,1]",
                  "trainer.epochs=2", "logger=wandb", "logger.mode=offline",
                  "logger.tags=[mixed]")
    summary = train_and_evaluate(pop, root / "pop")
    solos = []
    for m in population.members(pop):
        cfg = m.cfg.copy()
        cfg.logger = compose("logger=none").logger
        solos.append(root / "solo" / m.name)
        train_and_evaluate(cfg, solos[-1])
    return root / "pop", solos, summary


def test_members_equal_their_solo_runs_exactly(mixed):
    pop, solos, summary = mixed
    members = _member_dirs(pop)
    assert [m.name for m in members] == [s.name for s in solos]
    saved = population.params_of(pop)
    for member, solo in zip(members, solos, strict=True):
        assert_same_run(_records(member), _records(solo), member.name)
        assert_same_run(_summary(member), _summary(solo), member.name, train_exact=False)
        _assert_params_equal(saved[member.name], params_of(solo))
    assert summary["status"] == "completed" and summary["completed"] == 3
    # a member's wall time is its share of its group's (each member had the whole group's)
    for member in members:
        s = json.loads((member / "summary.json").read_text())
        assert s["population"]["members"] == 3
        assert s["wall_time_s"] == pytest.approx(s["population"]["group_wall_time_s"] / 3)
        assert s["population"]["group_wall_time_s"] <= summary["wall_time_s"]
        # compile (and data) included, as in a solo run's wall time (it was training only)
        assert s["population"]["group_wall_time_s"] > s["population"]["group_compile_time_s"]
        assert s["compile_time_s"] == pytest.approx(s["population"]["group_compile_time_s"] / 3)
        assert s["wall_time_s"] > s["compile_time_s"] > 0
    # the member selected by optimize_metric (best_val_accuracy), and its test accuracy
    chosen = max(solos, key=lambda s: _summary(s)["best_val_accuracy"])
    assert summary["best_val_accuracy"] == pytest.approx(_summary(chosen)["best_val_accuracy"])
    assert summary["test_accuracy"] == pytest.approx(_summary(chosen)["test_accuracy"])


def test_report_of_a_population_equals_the_solo_runs(mixed, tmp_path):
    pop, solos, _ = mixed
    runs_pop = [report.load_run(p) for p in report.find_runs([pop])]
    runs_solo = [report.load_run(p) for p in report.find_runs(solos)]
    assert len(runs_pop) == 3 and all(r.status == "completed" for r in runs_pop)
    cols_p, table_p = report.summarize(runs_pop)
    cols_s, table_s = report.summarize(runs_solo)
    assert cols_p == cols_s
    drop = {"wall_time_s_mean"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in table_p] == \
        [{k: v for k, v in r.items() if k not in drop} for r in table_s]


def _wandb_run_record(member: Path):
    path = finished_wandb_file(member)
    for rec in wandb_records(path):
        if rec.WhichOneof("record_type") == "run":
            return rec.run
    raise AssertionError(f"no run record in {path}")


def test_every_member_has_its_own_wandb_run(mixed):
    pop, _, _ = mixed
    ids, groups = set(), set()
    for member in _member_dirs(pop):
        run = _wandb_run_record(member)
        cfg = OmegaConf.load(member / "config.yaml")
        ids.add(run.run_id)
        groups.add(run.run_group)
        assert run.run_id == (member / "wandb_id.txt").read_text().strip()
        assert list(run.tags) == ["mixed", f"surrogate={cfg.surrogate.name}",
                                  f"alpha={cfg.surrogate.alpha:g}", "model=mlp",
                                  "dataset=digits", f"seed={cfg.seed}"]
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        assert config["surrogate"] == OmegaConf.to_container(cfg.surrogate)
        assert config["seed"] == cfg.seed
        assert run.display_name == f"{cfg.surrogate.name}(alpha={cfg.surrogate.alpha})-" \
                                   f"seed{cfg.seed}"
    assert len(ids) == 3 and len(groups) == 1 and groups.pop().endswith(pop.name)


@pytest.mark.slow
def test_a_finished_population_run_again_trains_on_only_when_asked(tmp_path, capsys):
    """The same command again trains nothing and leaves every member's record; more epochs
    resume the population and equal one trained straight; fewer, or other settings (T, the
    surrogate), are refused in one line before the directory's config.yaml is replaced.
    (Before, finished members were skipped whatever was asked: trainer.epochs=2 or T=10 on a
    finished 1-epoch population "completed" with the old members.)"""
    pop, run, straight = (f"{POP}.surrogate.alpha=[1,4]",), tmp_path / "run", tmp_path / "b"
    train_and_evaluate(compose(*pop, "trainer.epochs=1"), run)
    before = {m.name: (m / "summary.json").read_bytes() for m in _member_dirs(run)}
    population_record = (run / "summary.json").read_bytes()
    capsys.readouterr()
    config = (run / "config.yaml").read_bytes()
    train_and_evaluate(compose(*pop, "trainer.epochs=1", "optimizer.lr=0.005"), run)
    err = capsys.readouterr().err
    assert ("nothing to train for members 0-surrogate.alpha=1 to 1-surrogate.alpha=4: finished "
            "in an earlier attempt (trainer.epochs=1)") in err
    # (said as for a solo run: it said only "nothing to train"; reviewer)
    assert ("this command's optimizer.lr=0.005 did not apply: the run had finished (its "
            "config.yaml stays)") in err
    assert (run / "config.yaml").read_bytes() == config  # was rewritten with lr 0.005
    assert {m.name: (m / "summary.json").read_bytes() for m in _member_dirs(run)} == before
    assert (run / "summary.json").read_bytes() == population_record  # its wall time too
    lost = run / "members" / "1-surrogate.alpha=4" / "metrics.jsonl"
    kept = lost.read_bytes()
    lost.unlink()  # (a deleted record of a finished member went unmentioned; tester)
    train_and_evaluate(compose(*pop, "trainer.epochs=1"), run)
    assert (f"{lost} is missing: the records it held are lost (the member's summary.json "
            "stands)") in capsys.readouterr().err
    lost.write_bytes(kept)
    config = (run / "config.yaml").read_bytes()
    for override, named in (("T=7", "T: it has 6, this run has 7"),
                            ("surrogate=arctan", "surrogate.name: it has fast_sigmoid, this "
                                                 "run has arctan")):
        with pytest.raises(ConfigError, match="holds a population trained with other") as e:
            train_and_evaluate(compose(*pop, "trainer.epochs=2", override), run)
        assert named in str(e.value)
        assert (run / "config.yaml").read_bytes() == config
    newest = (run / "checkpoints" / str(max(int(d.name) for d in (run / "checkpoints").iterdir()
                                            if d.name.isdigit())) / "meta" / "metadata")
    earlier = json.loads(newest.read_text())["history"]["wall_time_s"]
    t0 = time.time()
    capsys.readouterr()
    train_and_evaluate(compose(*pop, "trainer.epochs=2"), run)
    attempt = time.time() - t0
    # the earlier config kept and said once, by the population (its members keep none)
    kept = list(run.glob("config.yaml.earlier-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == config
    assert not list(run.glob("members/*/config.yaml.earlier-*"))
    assert capsys.readouterr().err.count("resumed with other settings: trainer.epochs 1 -> 2") \
        == 1
    train_and_evaluate(compose(*pop, "trainer.epochs=2"), straight)
    for a, b in zip(_member_dirs(run), _member_dirs(straight), strict=True):
        assert _records(a) == _records(b) and _summary(a)["epochs"] == 2
        # the group's time: the first attempt's (to its last checkpoint) and this one's
        group_s = json.loads((a / "summary.json").read_text())["population"]["group_wall_time_s"]
        assert earlier + 0.5 * attempt < group_s <= earlier + attempt
    # the population's own record counts both attempts too (it said this attempt's only)
    population_s = json.loads((run / "summary.json").read_text())["wall_time_s"]
    assert population_s == pytest.approx(sum(json.loads((m / "summary.json").read_text())[
        "wall_time_s"] for m in _member_dirs(run)))
    with pytest.raises(ConfigError, match=r"trainer.epochs=1, but the checkpoint in .* has "
                       r"trained 2 epochs \(step \d+\)"):
        train_and_evaluate(compose(*pop, "trainer.epochs=1"), run)


def test_a_bad_member_value_is_named_before_an_earlier_attempt_or_a_run_directory(tmp_path):
    """A bad value in a population directory of another population was blamed on that ("holds
    a population trained with other settings: ... it has null, this run has [0.1, 'abc']"),
    and from the command line it left a run directory with a failed summary.json."""
    run = tmp_path / "run"
    (run / "members").mkdir(parents=True)
    OmegaConf.save(compose(f"{POP}.seed=[3]"), run / "config.yaml")
    want = ("trainer.population member 1-optimizer.lr=abc: optimizer.lr='abc' is invalid: "
            "must be a finite number > 0.0")
    with pytest.raises(ConfigError) as e:
        train_and_evaluate(compose(f"{POP}.optimizer.lr=[0.1,abc]"), run)
    assert str(e.value) == want
    p = cli("logger=none", f"{POP}.optimizer.lr=[0.1,abc]", f"hydra.run.dir={tmp_path / 'new'}")
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == f"snntrain: error: {want}"
    assert not (tmp_path / "new").exists()


def test_equal_values_give_equal_members_and_alphas_differ(tmp_path):
    cfg = compose(f"{POP}.surrogate.alpha=[4,4,8]", "surrogate=sigmoid")
    train_and_evaluate(cfg, tmp_path)
    a, b, c = _member_dirs(tmp_path)
    assert _records(a) == _records(b)
    assert _records(a) != _records(c)
    saved = population.params_of(tmp_path)
    _assert_params_equal(saved[a.name], saved[b.name])
    assert not np.array_equal(saved[a.name]["fc0"]["kernel"][...],
                              saved[c.name]["fc0"]["kernel"][...])
    # the wrong reader for a directory says which one to use (a member's gave {}, the solo
    # reader on a population a resume hint)
    import re

    with pytest.raises(ValueError, match=re.escape(
            f"{a} is not a population's directory (its config.yaml sets no {POP} axis); a "
            f"member's: params_of({str(tmp_path)!r})[{a.name!r}]")):
        population.params_of(a)
    with pytest.raises(ValueError, match="holds a population: snntrain.population.params_of"):
        params_of(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(  # (was a bare "no checkpoint")
            f"(a population member's are its population's: snntrain.population.params_of("
            f"'{tmp_path}')['{a.name}'])")):
        params_of(a)


def test_a_populations_bar_ends_each_epoch_at_its_members_epoch_means(monkeypatch, tmp_path):
    """As a solo run's bar (the epoch record): the population's ended each epoch at its last,
    padded batch's loss and accuracy (``acc 0.786``, 11 of 14 rows, in every group)."""
    from snntrain.progress import Progress

    calls = []
    monkeypatch.setattr(Progress, "update", lambda self, step, m: calls.append((step, dict(m))))
    cfg = compose(f"{POP}.seed=[0,1]", "trainer.epochs=2", f"{POP}.workers=null")
    train_and_evaluate(cfg, tmp_path)
    epochs = [[r for r in _records(d) if r["split"] == "epoch"] for d in _member_dirs(tmp_path)]
    assert [len(e) for e in epochs] == [2, 2]
    for a, b in zip(*epochs, strict=True):
        step = a["step"]
        last = [m for s, m in calls if s == step][-1]  # (the bar at the epoch's end)
        assert last.get("train_loss") == pytest.approx((a["train_loss"] + b["train_loss"]) / 2)
        assert last.get("train_accuracy") == pytest.approx(
            (a["train_accuracy"] + b["train_accuracy"]) / 2)
        assert "loss" not in last and "accuracy" not in last  # (no batch's values)


def test_lr_and_neuron_axes_equal_their_solo_runs(tmp_path):
    cfg = compose(f"{POP}.mode=zip", f"{POP}.optimizer.lr=[2e-3,5e-3]",
                  f"{POP}.neuron.beta=[0.9,0.8]", f"{POP}.neuron.threshold=[1.0,0.7]",
                  "model.learn_threshold=true")
    train_and_evaluate(cfg, tmp_path / "pop")
    saved = population.params_of(tmp_path / "pop")
    for m in population.members(cfg):
        train_and_evaluate(m.cfg, tmp_path / m.name)
        assert_same_run(_records(tmp_path / "pop" / "members" / m.name),
                        _records(tmp_path / m.name), m.name)
        _assert_params_equal(saved[m.name], params_of(tmp_path / m.name))


@pytest.mark.slow
def test_lr_axis_with_a_cosine_schedule_equals_solo_runs(tmp_path):
    """Per-member rates under ``optimizer.schedule=cosine`` with warm-up: the schedule is
    evaluated with the member's traced peak rate, the solo run's operations on the same
    float32 values, so under ``lax.map`` every record and parameter is equal (tolerance 0)."""
    cfg = compose(f"{POP}.optimizer.lr=[2e-3,8e-3]", "optimizer.schedule=cosine",
                  "optimizer.warmup_steps=5", "trainer.log_every=1")
    train_and_evaluate(cfg, tmp_path / "pop")
    saved = population.params_of(tmp_path / "pop")
    records = []
    for m in population.members(cfg):
        train_and_evaluate(m.cfg, tmp_path / m.name)
        records.append(_records(tmp_path / m.name))
        assert_same_run(_records(tmp_path / "pop" / "members" / m.name), records[-1], m.name)
        _assert_params_equal(saved[m.name], params_of(tmp_path / m.name))
    assert records[0] != records[1]  # the rates matter: equality above is not trivial


def test_a_diverging_member_is_frozen_and_the_others_unchanged(tmp_path):
    cfg = compose(f"{POP}.optimizer.lr=[2e-3,1e38,5e-3]", "trainer.log_every=1")
    summary = train_and_evaluate(cfg, tmp_path / "with")
    train_and_evaluate(compose(f"{POP}.optimizer.lr=[2e-3,5e-3]", "trainer.log_every=1"),
                       tmp_path / "without")
    ok0, bad, ok2 = _member_dirs(tmp_path / "with")
    s = json.loads((bad / "summary.json").read_text())
    assert s["status"] == "diverged" and s["error"].startswith("Diverged: loss or gradient")
    step = s["diverged_at_step"]
    assert f"at step {step}" in s["error"]
    assert [r["step"] for r in _records(bad)] == list(range(1, step))  # log_every=1
    assert summary["diverged"] == 1 and summary["completed"] == 2
    without = _member_dirs(tmp_path / "without")
    for member, other in zip((ok0, ok2), without, strict=True):
        assert _records(member) == _records(other)
    saved, other = population.params_of(tmp_path / "with"), population.params_of(
        tmp_path / "without")
    _assert_params_equal(saved[ok2.name], other[without[1].name])


def test_a_population_whose_members_all_diverge_is_diverged(tmp_path, capsys):
    """It ended "completed" with status 0 (a solo run that diverges exits 3), saying
    "frozen, the others go on" when none was left."""
    from snntrain.train import Diverged

    with pytest.raises(Diverged, match=r"every member of the population diverged \(2;"):
        train_and_evaluate(compose(f"{POP}.optimizer.lr=[1e38,1e37]"), tmp_path)
    err = capsys.readouterr().err
    assert "frozen, the other 1 go on" in err and "frozen, no member of this group is left" in err
    summary = _summary(tmp_path)
    assert summary["status"] == "diverged" and summary["completed"] == 0
    assert [_summary(m)["status"] for m in _member_dirs(tmp_path)] == ["diverged"] * 2


@pytest.mark.slow
def test_chunks_train_the_same_members(tmp_path):
    cfg = compose(f"{POP}.surrogate.alpha=[2,8]", f"{POP}.seed=[0,1]", f"{POP}.chunk=3")
    train_and_evaluate(cfg, tmp_path / "chunked")
    train_and_evaluate(compose(f"{POP}.surrogate.alpha=[2,8]", f"{POP}.seed=[0,1]"),
                       tmp_path / "whole")
    assert sorted(p.name for p in (tmp_path / "chunked" / "checkpoints").iterdir()) == \
        ["group0", "group1"]
    for a, b in zip(_member_dirs(tmp_path / "chunked"), _member_dirs(tmp_path / "whole"),
                    strict=True):
        assert _records(a) == _records(b)


@pytest.mark.slow
def test_types_grouped_in_programs_equal_one_program(tmp_path):
    cfg = compose(f"{POP}.surrogate.name=[sigmoid,erf]", f"{POP}.seed=[0,1]")
    train_and_evaluate(cfg, tmp_path / "switch")
    population.train_population(cfg, tmp_path / "grouped", by_type=True)
    for a, b in zip(_member_dirs(tmp_path / "switch"), _member_dirs(tmp_path / "grouped"),
                    strict=True):
        assert _records(a) == _records(b)


@pytest.mark.slow
def test_vmapped_members_match_solo_to_rounding(tmp_path):
    """``vectorize=2``: one vmapped step for both members. XLA sums a batched reduction in a
    different order than the solo one (about 1e-7 relative per step), and a spike whose
    membrane sits within that of the threshold may flip; over one short epoch the losses agree
    to 1e-4 relative and the accuracies to one example in 20."""
    cfg = compose(f"{POP}.surrogate.alpha=[2,8]", f"{POP}.vectorize=2")
    train_and_evaluate(cfg, tmp_path / "pop")
    for m in population.members(cfg):
        train_and_evaluate(m.cfg, tmp_path / m.name)
        for a, b in zip(_records(tmp_path / "pop" / "members" / m.name),
                        _records(tmp_path / m.name), strict=True):
            assert a.keys() == b.keys()
            for k, v in b.items():
                if not isinstance(v, float):
                    assert a[k] == v, k
                    continue
                tol = 0.05 if "accuracy" in k else 1e-4 * max(1.0, abs(v))
                assert a[k] == pytest.approx(v, abs=tol), k


# ---- command line: resume, multirun ---------------------------------------------------------

RUN = ("logger=none", "trainer.progress=false", "trainer.epochs=3", "trainer.batch_size=32",
       "model.hidden=[64]", "T=8", "trainer.checkpoint_every=7", "trainer.log_every=1",
       f"{POP}.surrogate.name=[sigmoid,arctan]", f"{POP}.seed=[0,1]")


def _wait_for_checkpoint(run_dir: Path, step: int, proc, timeout: float = 300) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()[-3000:]}")
        ckpts = run_dir / "checkpoints"  # not there until the run has started
        done = [int(p.name) for p in ckpts.iterdir() if p.name.isdigit()] if ckpts.is_dir() else []
        if done and max(done) >= step:
            return
        time.sleep(0.05)
    raise AssertionError("run did not reach the step in time")


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    full = tmp_path / "full"
    p = cli(*RUN, f"hydra.run.dir={full}")
    assert p.returncode == 0, p.stderr[-3000:]
    proc = popen(*RUN, f"hydra.run.dir={tmp_path / 'killed'}")
    _wait_for_checkpoint(tmp_path / "killed", 56, proc)  # mid-epoch 2 (41 steps an epoch)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cli(*RUN, f"hydra.run.dir={tmp_path / 'killed'}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming 4 members from step" in p.stderr
    for a, b in zip(_member_dirs(full), _member_dirs(tmp_path / "killed"), strict=True):
        assert _records(a) == _records(b)
        assert _summary(a) | {"run_dir": 0} == _summary(b) | {"run_dir": 0}
    saved_a, saved_b = population.params_of(full), population.params_of(tmp_path / "killed")
    for name in saved_a:
        _assert_params_equal(saved_a[name], saved_b[name])


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_same_command_resumes(tmp_path):
    proc = popen(*RUN, f"hydra.run.dir={tmp_path}")
    _wait_for_checkpoint(tmp_path, 14, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    assert "to resume, run: python -m snntrain" in err
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "preempted"
    assert all(json.loads((m / "summary.json").read_text())["status"] == "preempted"
               for m in _member_dirs(tmp_path))
    p = cli(*RUN, f"hydra.run.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["completed"] == 4


@pytest.mark.slow
def test_multirun_of_populations_reports_every_member(tmp_path):
    p = cli("-m", "logger=none", "trainer.progress=false", "trainer.epochs=1",
            "model.hidden=[16]", "T=4,6", f"{POP}.surrogate.alpha=[1,4]",
            f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    runs = report.find_runs([tmp_path])
    assert len(runs) == 4 and all(r.parent.name == "members" for r in runs)
    cols, table = report.summarize([report.load_run(r) for r in runs])
    assert "T" in cols and len(table) == 4


@pytest.mark.slow
def test_resuming_with_other_groups_is_refused(tmp_path):
    """Checkpoints written for one group of two members are not resumed as two groups of one
    (``chunk=1``): the members would silently start over from step 0 (before: they did)."""
    pop = (f"{POP}.surrogate.alpha=[1,4]", f"{POP}.chunk=1")
    train_and_evaluate(compose(pop[0], "trainer.epochs=1"), tmp_path)
    with pytest.raises(ConfigError, match=rf"^the checkpoints in {tmp_path / 'checkpoints'} hold "
                       rf"other groups of members \(sizes 2\) than this run trains \(groups of "
                       rf"1, {POP}.chunk=1\): set {POP}.chunk=null to resume them in their "
                       r"groups, or trainer.resume=never to start over$"):
        train_and_evaluate(compose(*pop, "trainer.epochs=2"), tmp_path)
    summary = train_and_evaluate(compose(pop[0], f"{POP}.chunk=2", "trainer.epochs=2"), tmp_path)
    assert summary["completed"] == 2 and not (tmp_path / "checkpoints" / "group0").exists()
    # trainer.resume=never with other groups sets every earlier checkpoint aside (the top
    # level's were left, and the next resume was refused as "groups of 2")
    train_and_evaluate(compose(*pop, "trainer.epochs=1", "trainer.resume=never"), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["group0", "group1"]
    assert len(list(tmp_path.glob("checkpoints.set-aside-*"))) == 1
    summary = train_and_evaluate(compose(*pop, "trainer.epochs=2"), tmp_path)
    assert summary["completed"] == 2
    # trainer.resume=<a chunked population>: each group from its group's checkpoints (it said
    # "no readable checkpoint"); the members go on as they would in their own directory
    other = tmp_path.parent / f"{tmp_path.name}-from"
    train_and_evaluate(compose(*pop, "trainer.epochs=3", f"trainer.resume={tmp_path}"), other)
    train_and_evaluate(compose(*pop, "trainer.epochs=3"), tmp_path)
    for a, b in zip(_member_dirs(tmp_path), _member_dirs(other), strict=True):
        epoch2 = [r["step"] for r in _records(a) if r["split"] == "epoch"][1]
        assert _records(b)[0]["step"] > epoch2 and _records(b) == [
            r for r in _records(a) if r["step"] > epoch2]


def test_a_population_and_a_solo_run_resume_under_the_same_model_rule():
    """What the model computes must match on resume, how it is computed may change: a
    population refused another model.remat_chunk (a solo run resumed it), and a solo run went
    on under another readout (a population refused it)."""
    from snntrain import train
    from snntrain.experiment import MODEL_COMPUTATION_KEYS

    def invariants(*more):
        return population._resume_invariants(compose(f"{POP}.seed=[0,1]", *more))

    assert "remat_chunk" in MODEL_COMPUTATION_KEYS
    assert invariants("model.remat_chunk=3") == invariants()
    assert invariants("model.readout=spike_count") != invariants()
    solo = (train.fingerprint(train.build(compose(*more))) for more in
            ((), ("model.remat_chunk=3",), ("model.readout=spike_count",)))
    base, remat, readout = solo
    assert remat == base and readout["model"] == {**base["model"], "readout": "spike_count"}
    # the refusal names the population's key (it said trainer.population.model.neuron.beta)
    from snntrain.checkpoint import describe_difference

    old, new = invariants(), invariants(f"{POP}.neuron.beta=[0.9]")
    assert describe_difference(old, new, "it has") == \
        f"{POP}.neuron.beta: it has null, this run has [0.9]"
    assert describe_difference({"neuron": {"beta": 0.9}}, {"neuron": {"beta": 0.5}}) == \
        "model.neuron.beta: checkpoint has 0.9, this run has 0.5"


@pytest.mark.slow
def test_resume_never_sets_a_populations_earlier_training_aside(tmp_path, capsys):
    """trainer.resume=never on a population directory kept the old step 22 beside the new
    step 11 (a later rerun found it), and replaced the members' records without a word."""
    pop = f"{POP}.seed=[0,1]"
    train_and_evaluate(compose(pop, "trainer.epochs=2"), tmp_path)
    old = {m.name: (m / "summary.json").read_bytes() for m in _member_dirs(tmp_path)}
    old_configs = {m.name: (m / "config.yaml").read_bytes() for m in _member_dirs(tmp_path)}
    old_config = (tmp_path / "config.yaml").read_bytes()
    capsys.readouterr()
    fresh = train_and_evaluate(compose(pop, "trainer.epochs=1", "trainer.resume=never"),
                               tmp_path)
    err = capsys.readouterr().err
    # the configs of the training set aside stay with it (the new run's replaced them)
    assert next(tmp_path.glob("config.yaml.set-aside-*")).read_bytes() == old_config
    assert "epochs: 1" in (tmp_path / "config.yaml").read_text()
    for m in _member_dirs(tmp_path):
        assert next(m.glob("config.yaml.set-aside-*")).read_bytes() == old_configs[m.name]
    assert "trainer.resume=never: kept the earlier checkpoints as checkpoints.set-aside-" in err
    assert ("trainer.resume=never: starting from step 0; kept the earlier files as members/"
            ) in err
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [_summary(_member_dirs(tmp_path)[0])["steps"]] and fresh["completed"] == 2
    for m in _member_dirs(tmp_path):
        kept = next(m.glob("summary.json.set-aside-*"))
        assert kept.read_bytes() == old[m.name]
    more = train_and_evaluate(compose(pop, "trainer.epochs=2"), tmp_path)  # trains epoch 2
    assert more["completed"] == 2
    assert [_summary(m)["epochs"] for m in _member_dirs(tmp_path)] == [2, 2]


@pytest.mark.slow
def test_a_population_resumed_from_another_directory_names_it(tmp_path, capsys):
    """trainer.resume=<another population's directory>: the line said it resumed "in" the new
    run's own (empty) checkpoints; it names the directory restored from, as a solo run's does.
    A path with no checkpoint is refused in one line naming the key, as for a solo run."""
    pop = f"{POP}.seed=[0,1]"
    train_and_evaluate(compose(pop, "trainer.epochs=1"), tmp_path / "a")
    capsys.readouterr()
    on = train_and_evaluate(compose(pop, "trainer.epochs=2", f"trainer.resume={tmp_path / 'a'}"),
                            tmp_path / "b")
    steps = _summary(_member_dirs(tmp_path / "a")[0])["steps"]
    assert (f"resuming 2 members from step {steps} (epoch 2, batch 0 of {steps}) in "
            f"{tmp_path / 'a' / 'checkpoints'}") in capsys.readouterr().err
    assert on["completed"] == 2
    (tmp_path / "empty").mkdir()
    for cfg in (compose(pop, f"trainer.resume={tmp_path / 'empty'}"),
                compose(f"trainer.resume={tmp_path / 'empty'}")):
        with pytest.raises(ConfigError, match=rf"^trainer.resume={tmp_path / 'empty'}: no "
                           rf"readable checkpoint in {tmp_path / 'empty'}$"):
            train_and_evaluate(cfg, tmp_path / "c")


def test_a_member_whose_result_is_no_number_is_diverged_in_the_populations_summary(tmp_path):
    """trainer.on_nan=skip_step: a member that ends with a NaN loss counts as diverged in the
    population's summary.json, as the report counts it (it said "2 completed")."""
    summary = train_and_evaluate(compose("trainer.on_nan=skip_step",
                                         f"{POP}.optimizer.lr=[1e-3,1e38]"), tmp_path)
    assert (summary["completed"], summary["diverged"]) == (1, 1)
    assert summary["status"] == "completed"  # the population's (it became the last member's)
    bad = summary["members"][1]
    assert bad["status"] == "diverged" and bad["reason"].startswith("completed, but its ")
    assert _summary(_member_dirs(tmp_path)[1])["status"] == "completed"  # (its own record)
    assert summary["best_member"] == "0-optimizer.lr=0.001"
    runs = [report.load_run(d) for d in _member_dirs(tmp_path)]
    assert [r.status for r in runs] == ["completed", "diverged"]


def test_the_population_status_is_not_a_members(tmp_path):
    """A loop variable over the members took the status's name: a pre-empted chunked population
    was recorded 'not started' (its last member's), one ending on a diverged member 'diverged',
    and a plain rerun did not continue it."""
    cfg = compose(f"{POP}.seed=[0,1]")
    ms = population.members(cfg)
    (tmp_path / "members" / ms[0].name).mkdir(parents=True)
    (tmp_path / "members" / ms[0].name / "summary.json").write_text('{"status": "preempted"}')
    summary = population.population_summary(cfg, tmp_path, ms, "preempted", 1.0)
    assert summary["status"] == "preempted"
    assert [r["status"] for r in summary["members"]] == ["preempted", "not started"]
    (tmp_path / "members" / ms[1].name).mkdir()
    (tmp_path / "members" / ms[1].name / "summary.json").write_text('{"status": "diverged"}')
    assert population.population_summary(cfg, tmp_path, ms, "completed", 0)["status"] == \
        "completed"


def test_a_finished_population_rerun_with_other_training_settings_is_refused(tmp_path):
    """A finished population rerun with loss.rate_reg.weight=0.5 said "nothing to train" and
    reported its members, trained with 0, as the new run's (a solo run refuses); a train-on
    refused by the group's checkpoint (a cosine schedule over more epochs) replaced the
    population's config.yaml all the same."""
    pop = (f"{POP}.seed=[0,1]", "optimizer.schedule=cosine")
    train_and_evaluate(compose(*pop), tmp_path)
    config = (tmp_path / "config.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"holds a population trained with other settings: "
                       r"loss.rate_reg.weight: it has 0.0, this run has 0.5"):
        train_and_evaluate(compose(*pop, "loss.rate_reg.weight=0.5"), tmp_path)
    # (refused before any group is built: with worker processes each refused it after
    # compiling, in several lines)
    with pytest.raises(ConfigError, match=r"other settings: trainer.epochs \(optimizer.schedule"
                       r"=cosine decays over the whole run\): it has 1, this run has 2 \(use "):
        train_and_evaluate(compose(*pop, "trainer.epochs=2"), tmp_path)
    assert (tmp_path / "config.yaml").read_bytes() == config


def test_resume_never_sets_aside_the_members_this_population_does_not_have(tmp_path, capsys):
    """trainer.resume=never with other axes left the earlier members in members/, and the
    run's report chose one of them."""
    train_and_evaluate(compose(f"{POP}.surrogate.alpha=[1,4]"), tmp_path)
    earlier = (tmp_path / "summary.json").read_bytes()
    capsys.readouterr()
    summary = train_and_evaluate(compose(f"{POP}.seed=[0,1]", "trainer.resume=never",
                                         "dataset.val_fraction=0"), tmp_path)
    # the population's own summary is set aside too (it was replaced), and its config is new
    assert next(tmp_path.glob("summary.json.set-aside-*")).read_bytes() == earlier
    assert OmegaConf.load(tmp_path / "config.yaml").trainer.population.seed == [0, 1]
    assert ("trainer.resume=never: kept 2 earlier members this population does not have in "
            "members.set-aside-") in capsys.readouterr().err
    assert [m.name for m in _member_dirs(tmp_path)] == ["0-seed=0", "1-seed=1"]
    kept = next(tmp_path.glob("members.set-aside-*"))
    assert sorted(d.name for d in kept.iterdir()) == ["0-surrogate.alpha=1",
                                                      "1-surrogate.alpha=4"]
    assert [r.name for r in report.find_runs([tmp_path])] == ["0-seed=0", "1-seed=1"]
    # without a validation split every member completed ("0 completed" was said)
    assert summary["completed"] == 2 and summary["best_val_accuracy"] is None
    for m in _member_dirs(tmp_path):  # each member's share of the group's times
        s = json.loads((m / "summary.json").read_text())
        assert s["train_time_s"] == pytest.approx(s["population"]["group_train_time_s"] / 2)
        assert s["wall_time_s"] == pytest.approx(s["population"]["group_wall_time_s"] / 2)


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_a_populations_report_follows_the_report_switch(tmp_path):
    """hydra.callbacks.report.enabled=false stopped a multirun's report, not a population's."""
    tiny = ("logger=none", "trainer.progress=false", "model.hidden=[8]", "T=4", f"{POP}.seed=[0,1]")
    off = cli(*tiny, "hydra.callbacks.report.enabled=false", f"hydra.run.dir={tmp_path / 'off'}")
    on = cli(*tiny, f"hydra.run.dir={tmp_path / 'on'}")
    assert off.returncode == on.returncode == 0, off.stderr[-2000:] + on.stderr[-2000:]
    assert not (tmp_path / "off" / "report").exists() and "report:" not in off.stdout
    assert (tmp_path / "on" / "report" / "index.html").is_file()


def test_population_settings_without_an_axis_are_noted(capsys):
    """trainer.population.mesh=[3,1] without an axis trained a normal run without a word."""
    assert population.unused_settings(compose(f"{POP}.mesh=[3,1]", f"{POP}.mode=zip")) == (
        f"snntrain: note: {POP}.mesh=[3, 1], {POP}.mode=zip has no effect: no {POP} axis is "
        f"set (e.g. {POP}.seed=[0,1,2]), so this is a normal run")
    assert population.unused_settings(compose(f"{POP}.chunk=2", f"{POP}.seed=[0,1]")) is None
    assert population.unused_settings(compose()) is None
    assert population.unused_settings(compose(f"{POP}.cpu_devices=2")) == (
        f"snntrain: note: {POP}.cpu_devices=2 has no effect: no {POP} axis is set (e.g. "
        f"{POP}.seed=[0,1,2]), so this is a normal run")


def test_a_populations_wall_time_adds_its_groups_earlier_and_now(tmp_path):
    """A group finished in an earlier attempt counted only to its last checkpoint in the
    population's wall_time_s (not its last evaluation): the population's record was shorter
    than its members' shares added up."""
    import shutil

    pop = (f"{POP}.seed=[0,1]", f"{POP}.chunk=1")
    train_and_evaluate(compose(*pop), tmp_path)
    shutil.rmtree(tmp_path / "members" / "1-seed=1")  # group 2 to train again, group 1 done
    shutil.rmtree(tmp_path / "checkpoints" / "group1")
    summary = train_and_evaluate(compose(*pop), tmp_path)
    shares = [json.loads((m / "summary.json").read_text())["wall_time_s"]
              for m in _member_dirs(tmp_path)]
    assert summary["wall_time_s"] == pytest.approx(sum(shares), rel=1e-9)


def test_a_population_and_a_single_run_do_not_share_a_run_directory(tmp_path):
    """Each went on silently in the other's directory: a population replaced a single run's
    summary.json and config.yaml and left its checkpoints beside the groups' (and the report
    then read the single run as a member). Refused in one line, files untouched;
    ``trainer.resume=never`` sets the other's files aside."""
    from snntrain.errors import RefusedConfig

    solo, pop = compose("trainer.epochs=1"), compose("trainer.epochs=1", f"{POP}.seed=[0,1]")
    train_and_evaluate(solo, tmp_path / "solo")
    before = {p.name: p.read_bytes() for p in (tmp_path / "solo").iterdir() if p.is_file()}
    with pytest.raises(RefusedConfig, match=rf"^{tmp_path / 'solo'} holds a single run "
                       r"\(metrics.jsonl\), and this is a population: use a new run directory "
                       r"\(hydra.run.dir\), or trainer.resume=never to set its files aside$"):
        train_and_evaluate(pop, tmp_path / "solo")
    assert {p.name: p.read_bytes() for p in (tmp_path / "solo").iterdir() if p.is_file()} == \
        before and not (tmp_path / "solo" / "members").exists()
    summary = train_and_evaluate(compose("trainer.epochs=1", f"{POP}.seed=[0,1]",
                                         "trainer.resume=never"), tmp_path / "solo")
    assert summary["completed"] == 2
    names = {p.name.split(".set-aside-")[0] for p in (tmp_path / "solo").iterdir()}
    assert {"metrics.jsonl", "checkpoints", "summary.json", "members"} <= names
    assert not (tmp_path / "solo" / "metrics.jsonl").exists()  # (set aside)

    train_and_evaluate(pop, tmp_path / "pop")
    with pytest.raises(RefusedConfig, match=r"holds a population \(members/0-seed=0/config.yaml\), "
                                            r"and this is a single run"):
        train_and_evaluate(solo, tmp_path / "pop")
    assert train_and_evaluate(compose("trainer.epochs=1", "trainer.resume=never"),
                              tmp_path / "pop")["status"] == "completed"
    assert not (tmp_path / "pop" / "members").exists()


def test_a_refused_regrouping_leaves_the_populations_config_yaml(tmp_path):
    """An interrupted population run again with another chunk is refused (its checkpoints
    hold other groups), but its config.yaml was already replaced by the refused attempt's."""
    from snntrain.errors import RefusedConfig

    base = ("trainer.epochs=1", f"{POP}.seed=[0,1,2,3]")
    train_and_evaluate(compose(*base, f"{POP}.chunk=2"), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "status": "preempted"}))
    before = (tmp_path / "config.yaml").read_text()
    with pytest.raises(RefusedConfig, match=r"hold other groups of members \(sizes 2, 2\) than "
                                            r"this run trains \(groups of 1, trainer.population."
                                            r"chunk=1\): set trainer.population.chunk=null to "
                                            r"resume them in their groups, or trainer.resume="
                                            r"never to start over$"):
        train_and_evaluate(compose(*base, f"{POP}.chunk=1"), tmp_path)
    assert (tmp_path / "config.yaml").read_text() == before


def test_a_resume_its_checkpoints_refuse_leaves_the_populations_config_yaml(tmp_path):
    """Refusals that come from a group's checkpoint (here the cosine schedule's length) came
    after the population's config.yaml had been replaced by the refused attempt's."""

    base = (f"{POP}.seed=[0,1]", "optimizer.schedule=cosine")
    train_and_evaluate(compose(*base, "trainer.epochs=1"), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "status": "preempted"}))
    before = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"schedule=cosine decays over the whole run"):
        train_and_evaluate(compose(*base, "trainer.epochs=2"), tmp_path)
    assert (tmp_path / "config.yaml").read_text() == before
    # killed before its first checkpoint: nothing holds the schedule's place, it starts over
    shutil.rmtree(tmp_path / "checkpoints")
    for d in (tmp_path / "members").iterdir():
        (d / "summary.json").unlink()
    assert train_and_evaluate(compose(*base, "trainer.epochs=2"), tmp_path)["completed"] == 2


def test_a_population_killed_before_its_largest_group_saved_resumes(tmp_path):
    """The earlier groups' size was read from the largest group with a checkpoint: a
    population killed after its group of 2 saved and before its group of 3 did could not be
    resumed at all (every chunk was refused, the one that would work never named)."""
    base = ("trainer.epochs=1", f"{POP}.seed=[0,1,2,3,4]")
    train_and_evaluate(compose(*base, f"{POP}.chunk=3"), tmp_path)  # [0,1,2], [3,4]
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "status": "preempted"}))
    shutil.rmtree(tmp_path / "checkpoints" / "group0")  # (killed before it saved)
    for m in ("0-seed=0", "1-seed=1", "2-seed=2"):
        (tmp_path / "members" / m / "summary.json").unlink()
    done = {m: (tmp_path / "members" / m / "summary.json").read_bytes()
            for m in ("3-seed=3", "4-seed=4")}
    summary = train_and_evaluate(compose(*base), tmp_path)  # chunk=null: the saved groups
    assert summary["completed"] == 5
    assert {m: (tmp_path / "members" / m / "summary.json").read_bytes()
            for m in done} == done  # (finished: not trained again)
    ms = population.members(compose(*base))
    strided = population._grouping_holding(ms, {"group1": ["1-seed=1", "3-seed=3"]}, None)
    assert [[m.index for m in p] for p in strided] == [[0, 2, 4], [1, 3]]  # (2 workers')
    assert population._grouping_holding(ms, {"group1": ["1-seed=1", "3-seed=3"]}, 2) is None
    assert population._grouping_holding(ms, {"checkpoints": ["0-seed=0"]}, None) is None


def test_chunk_auto_with_worker_processes_starts_from_one_group_per_worker(monkeypatch,
                                                                           tmp_path):
    """``chunk=auto`` planned one group of all the members, so a command line that had
    chosen worker processes trained them all in one process on one core."""
    monkeypatch.setattr(population, "_workers_here", lambda cfg: 2)
    cfg = compose(f"{POP}.seed=[0,1,2,3,4]", f"{POP}.chunk=auto")
    ms = population.members(cfg)
    size, first = population.plan_groups(cfg, ms)
    assert size == 3 and [m.index for m in first.members] == [0, 1, 2]
    parts, first = population._plan(cfg, tmp_path, ms, 2, False)
    assert [[m.index for m in p] for p in parts] == [[0, 2, 4], [1, 3]]
    assert first is None  # (compiled for members 0-2, not group 0's: built again if needed)


def test_a_member_left_without_its_record_by_its_population_reads_as_ended(tmp_path):
    """A worker killed mid-run leaves its members without summary.json: the report listed them
    as running (for 30 minutes) although the population had ended as failed."""
    import os

    from snntrain import runs

    train_and_evaluate(compose("trainer.epochs=1", f"{POP}.seed=[0,1]"), tmp_path)
    member = tmp_path / "members" / "1-seed=1"
    (member / "summary.json").unlink()
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({
        **summary, "status": "failed", "error": "WorkerFailed: killed by SIGKILL"}))
    run = runs.load_run(member)
    assert run.status == runs.FAILED and run.reason == (
        "epoch 1/1; its population ended before it: failed (WorkerFailed: killed by SIGKILL)")
    later = time.time() + 60  # the population rerun: its member writes after that summary
    os.utime(member / "metrics.jsonl", (later, later))
    assert runs.load_run(member, now=later).status == runs.RUNNING


def test_a_stop_as_a_group_finishes_starts_no_other_group(tmp_path):
    """A signal that came as a group finished: the next group was built, compiled and
    trained a step before it saved, inside the signal's grace time."""
    import time

    cfg = compose(f"{POP}.seed=[0,1,2,3]", f"{POP}.chunk=2")
    ms = population.members(cfg)
    parts = population.partition(ms, 2)
    first_done = tmp_path / "members" / ms[1].name / "summary.json"
    status, _, trained = population.train_groups(cfg, tmp_path, parts, range(2),
                                                 first_done.exists, time.time())
    assert status == "preempted" and trained
    assert json.loads(first_done.read_text())["status"] == "completed"
    assert not (tmp_path / "checkpoints" / "group1").exists()
    assert not (tmp_path / "members" / ms[2].name).exists()


@pytest.mark.slow  # (~30 s: two conv populations)
def test_a_resumed_population_traces_with_the_formulations_its_checkpoint_recorded(
        tmp_path, monkeypatch):
    """A population's groups are traced before their checkpoint is restored (plan_groups
    sizes them), so the conv formulations a checkpoint recorded were pinned too late: a resume
    with SNNTRAIN_AUTOTUNE=0 (or another node's cache) traced the rule's choice and recorded it
    as the run's (reviewer; a solo run's resume kept them). Here the checkpoint's record is
    set to another formulation than the rule's: the resumed group uses it and records it."""
    from snntrain import autotune
    from snntrain.checkpoint import Checkpoints

    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "0")
    # (this process's choices only: an earlier test's conv shapes were recorded too)
    for table in ("_memory", "_chosen", "_pinned"):
        monkeypatch.setattr(autotune, table, {})
    run = ("logger=none", "trainer.progress=false", "model=conv", "model.channels=[2,2]", "T=3",
           "trainer.batch_size=64", f"{POP}.seed=[0,1]", "optimizer.schedule=constant")
    train_and_evaluate(compose(*run, "trainer.epochs=1", tiny=False), tmp_path)
    ckpts = tmp_path / "checkpoints"
    step = max(int(d.name) for d in ckpts.iterdir() if d.name.isdigit())
    meta_file = ckpts / str(step) / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    ruled = meta["autotune"]
    assert ruled and all(v in ("s2d", "dense", "lax") for v in ruled.values())
    other = {k: "lax" if v != "lax" else "dense" for k, v in ruled.items()}
    meta_file.write_text(json.dumps({**meta, "autotune": other}))
    train_and_evaluate(compose(*run, "trainer.epochs=2", tiny=False), tmp_path)
    assert Checkpoints(ckpts, write=False).newest_meta()["autotune"] == other
    # a fresh population next in this process (a multirun's next job, a notebook) traced
    # with the resumed one's pins and recorded them as its own (reviewer): the rule's again
    train_and_evaluate(compose(*run, "trainer.epochs=1", tiny=False), tmp_path / "fresh")
    assert Checkpoints(tmp_path / "fresh" / "checkpoints",
                       write=False).newest_meta()["autotune"] == ruled


def test_a_given_run_name_starts_every_members_wandb_name():
    """logger.run_name given to a population named every member's wandb run the same
    (configuration tester): the name starts each member's default name now; a single run's
    is the name given."""
    from snntrain import lifecycle

    cfg = compose("logger=wandb", "logger.run_name=scan")
    m = population.members(compose("logger=wandb", "logger.run_name=scan",
                                   f"{POP}.surrogate.alpha=[2,4]"))
    names = [lifecycle.wandb_settings(x.cfg, [], member=True)["name"] for x in m]
    assert names == ["scan-fast_sigmoid(alpha=2)-seed0", "scan-fast_sigmoid(alpha=4)-seed0"]
    assert lifecycle.wandb_settings(cfg)["name"] == "scan"


def test_members_with_the_same_values_are_said_at_the_start():
    """seed=[0,0] trained two identical members, said only by the final report ("repeating a
    configuration's seed (counted once)") (configuration tester)."""
    ms = population.members(compose(f"{POP}.seed=[0,1,0]", f"{POP}.optimizer.lr=[0.01]"))
    assert population._repeated_note(ms) == (
        "population: member 2 (= 0) repeats another's values: they train identically, and the "
        "report counts one")
    assert population._repeated_note(population.members(compose(f"{POP}.seed=[0,1]"))) is None
