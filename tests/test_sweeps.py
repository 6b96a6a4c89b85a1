"""Sweeps: experiment files, the optuna search, the wandb sweep file, and a real multirun.

The multirun and optuna tests run ``python -m snntrain -m ...`` in subprocesses (marked slow);
the rest compose configs in-process with Hydra's compose API.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from _wandb import read_wandb_run
from _workers import cli

from snntrain import report
from snntrain.paths import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
# Event-data experiments need data files: tests/test_events.py runs each on synthetic files.
EVENT_EXPERIMENTS = {e for e in EXPERIMENTS if any(
    f"override /dataset: {d}\n" in (CONFIG_DIR / "experiment" / f"{e}.yaml").read_text()
    for d in ("shd", "ssc", "nmnist", "dvs_gesture", "events"))}
# Population experiments sweep inside one run: tests/test_population.py composes and runs them.
POPULATION_EXPERIMENTS = {e for e in EXPERIMENTS if e.endswith("_population")}
TINY = [
    "logger=none",
    "trainer.progress=false",
    "trainer.epochs=1",
    "model.hidden=[16]",
    "T=4",
    "trainer.batch_size=128",
    "trainer.async_checkpointing=false",
]


def compose(overrides: list[str], hydra: bool = False):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides, return_hydra_config=hydra)


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper launches for ``-m overrides`` (incl. hydra.sweeper.params).

    Uses Hydra's own parser and BasicSweeper.split_arguments, so ``glob(*)`` expands exactly as
    in ``python -m snntrain -m``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        fixed = [
            o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()
        ]
        cfg = hydra_compose("config", overrides=fixed, return_hydra_config=True)
        params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
        return BasicSweeper.split_arguments(parser.parse_overrides([*params, *overrides]), None)[0]


def surrogate_configs() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "surrogate").glob("*.yaml"))


# ---- experiments --------------------------------------------------------------------------


def test_experiments_exist():
    assert {"surrogate_comparison", "alpha_scan", "quick"} <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_"), name


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "surrogate_comparison" else n
    for n in sorted(set(EXPERIMENTS) - EVENT_EXPERIMENTS - POPULATION_EXPERIMENTS)])
def test_every_experiment_composes_and_runs_with_a_tiny_budget(name, tmp_path):
    """``experiment=glob(*)``: every sweep point composes and builds; the first one trains."""
    from snntrain.config import validate
    from snntrain.surrogates import from_config as build_surrogate
    from snntrain.train import train_and_evaluate

    jobs = expand_sweep([f"experiment={name}"])
    assert len(jobs) > 1, f"{name} sweeps nothing"
    seen = set()
    for job in jobs:
        no_seed = tuple(o for o in job if not o.startswith("seed="))
        if no_seed in seen:
            continue
        seen.add(no_seed)
        cfg = compose([f"experiment={name}", *job, *TINY])
        validate(cfg)
        build_surrogate(cfg.surrogate)  # e.g. no alpha forced onto a surrogate without one
    cfg = compose([f"experiment={name}", *jobs[0], *TINY])
    summary = train_and_evaluate(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test_accuracy"] <= 1.0


def test_experiments_values_win_over_the_primary_config():
    """An experiment sets top-level keys (T) and group keys; the command line beats both."""
    cfg = compose(["experiment=quick"])
    assert cfg.T == 10 and cfg.trainer.epochs == 5 and list(cfg.model.hidden) == [64]
    cfg = compose(["experiment=quick", "T=3", "surrogate=softsign"])
    assert cfg.T == 3 and cfg.surrogate.name == "softsign"


def test_surrogate_comparison_covers_every_surrogate_at_defaults_with_3_seeds():
    jobs = expand_sweep(["experiment=surrogate_comparison"])
    pairs = {
        (
            dict(o.split("=", 1) for o in job)["surrogate"],
            dict(o.split("=", 1) for o in job)["seed"],
        )
        for job in jobs
    }
    assert pairs == {(s, str(seed)) for s in surrogate_configs() for seed in (0, 1, 2)}
    assert not any(o.startswith("surrogate.") for job in jobs for o in job)
    cfg = compose(["experiment=surrogate_comparison"])
    assert cfg.model.name == "mlp" and cfg.dataset.name == "digits"


def test_alpha_scan_sweeps_one_surrogate_over_alphas_and_seeds():
    jobs = expand_sweep(["experiment=alpha_scan"])
    alphas = {float(dict(o.split("=", 1) for o in j)["surrogate.alpha"]) for j in jobs}
    seeds = {dict(o.split("=", 1) for o in j)["seed"] for j in jobs}
    assert len(alphas) >= 5 and seeds == {"0", "1", "2"}
    assert len(jobs) == len(alphas) * 3
    assert compose(["experiment=alpha_scan"]).surrogate.name == "sigmoid"
    # Another surrogate from the command line; its alphas replace the experiment's.
    jobs = expand_sweep(["experiment=alpha_scan", "surrogate=arctan", "surrogate.alpha=1,4"])
    assert len(jobs) == 2 * 3


# ---- optuna -------------------------------------------------------------------------------


def _optuna_installed() -> bool:
    try:
        import hydra_plugins.hydra_optuna_sweeper  # noqa: F401
    except ImportError:
        return False
    return True


def _register_optuna_stub() -> None:
    """Without the `sweep` extra, stand-in configs for the sweeper so composing still works."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(
        group="hydra/sweeper",
        name="optuna",
        node={
            "_target_": "not_installed",
            "defaults": [{"sampler": "tpe"}],
            "sampler": None,
            "direction": "minimize",
            "storage": None,
            "study_name": None,
            "n_trials": 20,
            "n_jobs": 2,
            "max_failure_rate": 0.0,
            "search_space": None,
            "params": None,
            "custom_search_space": None,
        },
        provider="test",
    )
    cs.store(
        group="hydra/sweeper/sampler",
        name="tpe",
        node={"_target_": "not_installed", "seed": None, "n_startup_trials": 10},
        provider="test",
    )


def test_optuna_config_composes():
    """Always runs: with a stand-in for the plugin's configs when the extra is missing."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from snntrain import surrogates
    from snntrain.config import validate
    from snntrain.surrogates import from_config as build_surrogate

    if not _optuna_installed():
        _register_optuna_stub()
    cfg = compose(["hparams_search=optuna"], hydra=True)
    assert cfg.optimize_metric == "best_val_accuracy"
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and sweeper.n_trials >= 10
    # a loss (or a time) is minimised: on val_loss the search returned the worst trial
    for metric, direction in (("val_loss", "minimize"), ("best_val_accuracy", "maximize"),
                              ("wall_time_s", "minimize"), ("samples_per_s", "maximize")):
        swept = compose(["hparams_search=optuna", f"optimize_metric={metric}"], hydra=True)
        assert swept.hydra.sweeper.direction == direction, metric
    params = {
        o.get_key_element(): o
        for o in OverridesParser.create().parse_overrides(
            [f"{k}={v}" for k, v in sweeper.params.items()]
        )
    }
    assert set(params) == {"surrogate", "surrogate.alpha", "optimizer.lr", "model.neuron.beta"}
    choices = list(params["surrogate"].sweep_string_iterator())
    assert len(choices) >= 2 and set(choices) <= set(surrogates.available())
    alpha = params["surrogate.alpha"].value()
    lr = params["optimizer.lr"].value()
    beta = params["model.neuron.beta"].value()
    assert "log" in alpha.tags and "log" in lr.tags
    assert 0 < lr.start < lr.end < 1 and 0 < beta.start < beta.end < 1
    # Every candidate takes an alpha across the whole interval (no alpha-less surrogate).
    for name in choices:
        for a in (alpha.start, alpha.end):
            job = compose(
                [
                    "hparams_search=optuna",
                    f"surrogate={name}",
                    f"surrogate.alpha={a}",
                    f"optimizer.lr={lr.start}",
                    f"model.neuron.beta={beta.end}",
                    *TINY,
                ]
            )
            validate(job)
            assert build_surrogate(job.surrogate).alpha == pytest.approx(a)


def test_a_searched_group_option_without_a_searched_key_is_refused():
    """A multirun varying a key one option of a config group lacks: every job drawing that
    option failed to compose, and Hydra's error ended an Optuna search at its first such
    trial (``surrogate=choice(sigmoid,straight_through)`` beside Optuna's surrogate.alpha)."""
    from snntrain.startup import sweep_key_error

    if not _optuna_installed():
        _register_optuna_stub()
    optuna = dict(compose(["hparams_search=optuna"], hydra=True).hydra.sweeper.params)
    assert sweep_key_error(optuna, ["hparams_search=optuna"]) is None  # every one has alpha
    assert sweep_key_error(optuna, ["surrogate=choice(sigmoid,straight_through)"]) == (
        "surrogate.alpha=tag(log, interval(0.5, 16)) (hydra.sweeper.params) varies "
        "surrogate.alpha, but surrogate=straight_through (surrogate=choice(sigmoid,"
        "straight_through)) has no alpha: every job drawing it would fail; vary surrogate over "
        "options that have it, or leave surrogate.alpha out")
    # a group fixed to an option without the key; a nested group; options with defaults
    # lists; a glob; the same for a command-line sweep (it said "write +model.hidden=...")
    for params, task, want in (
        (optuna, ["surrogate=straight_through"], "surrogate.alpha=tag(log, interval(0.5, 16)) "
         "(hydra.sweeper.params) varies surrogate.alpha, but surrogate=straight_through "
         "(command line) has no alpha: every job would fail; choose a surrogate that has it, "
         "or leave surrogate.alpha out"),
        (optuna, ["model/neuron=choice(if,lif)"], "but model/neuron=if (model/neuron=choice("
         "if,lif)) has no beta"),
        ({}, ["model=mlp,conv", "model.hidden=[16],[32]"], "model.hidden=[16],[32] varies "
         "model.hidden, but model=conv (model=mlp,conv) has no hidden"),
        ({}, ["surrogate=glob(*)", "surrogate.alpha=1,2"], "has no alpha"),
    ):
        assert want in (sweep_key_error(params, task) or ""), task
    # valid: a key every option has from the root config (surrogate.normalize), a fixed
    # value that takes the key out of the search, the shipped experiments
    assert sweep_key_error({}, ["surrogate=sigmoid,arctan", "surrogate.normalize=true,false"]
                           ) is None
    assert sweep_key_error(optuna, ["surrogate=choice(sigmoid,straight_through)",
                                    "surrogate.alpha=2"]) is None
    for experiment in EXPERIMENTS:
        cfg = compose([f"experiment={experiment}"], hydra=True)
        assert sweep_key_error(dict(cfg.hydra.sweeper.get("params") or {}),
                               [f"experiment={experiment}"]) is None, experiment


def test_an_experiments_search_space_is_checked_inside_the_running_sweep(tmp_path):
    """Called from the running sweep (on_multirun_start), the check's own Hydra initialisation
    raised and was swallowed: ``-m experiment=alpha_scan surrogate=straight_through`` (the
    README's "scan another surrogate") launched 21 jobs that each failed with Hydra's
    multi-line error."""
    p = cli("-m", "experiment=alpha_scan", "surrogate=straight_through", *TINY,
            f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == (
        "snntrain: error: surrogate.alpha=0.5,1,2,4,8,16,32 (hydra.sweeper.params) varies "
        "surrogate.alpha, but surrogate=straight_through (command line) has no alpha: every "
        "job would fail; choose a surrogate that has it, or leave surrogate.alpha out")
    assert not any(tmp_path.glob("*/summary.json"))


@pytest.mark.slow
@pytest.mark.skipif(
    not _optuna_installed(), reason="needs the `sweep` extra (pip install -e '.[sweep]')"
)
def test_optuna_runs_two_trials(tmp_path):
    p = cli(
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    runs = sorted(d for d in tmp_path.iterdir() if (d / "summary.json").is_file())
    assert len(runs) == 2
    best = [json.loads((d / "summary.json").read_text())["best_val_accuracy"] for d in runs]
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert result["best_value"] == max(best)
    assert set(result["best_params"]) == {
        "surrogate",
        "surrogate.alpha",
        "optimizer.lr",
        "model.neuron.beta",
    }


@pytest.mark.slow
@pytest.mark.skipif(
    not _optuna_installed(), reason="needs the `sweep` extra (pip install -e '.[sweep]')"
)
def test_an_optuna_search_whose_trials_all_fail_ends_in_one_line(tmp_path):
    """Every trial refused (a test fraction of digits that holds no sample, found when each
    trial loads the data): the search ended in Optuna's traceback "No trials are completed
    yet."; now in one line. (An Optuna parameter that is also a population axis, which this
    test used before, is now refused before the search starts: see below.)"""
    p = cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
            "dataset.test_fraction=0.0001", *TINY, f"hydra.sweep.dir={tmp_path}")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "dataset.test_fraction=0.0001 of 1797 samples is no test sample" in p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        "snntrain: error: no trial of the Optuna search completed (each failed job printed its "
        "reason above; the sweep report lists them)")
    assert "No run has completed" in p.stdout and (tmp_path / "report" / "index.html").is_file()
    # an Optuna parameter that is also a population axis: every trial would train the same
    # population, refused before the search starts (the trials failed one by one before)
    p = cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
            "trainer.population.optimizer.lr=[1e-3]", *TINY, f"hydra.sweep.dir={tmp_path / 'p'}")
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "snntrain: error: optimizer.lr (sampled by hparams_search=optuna) varies optimizer.lr "
        "across the sweep's jobs, and the population axis trainer.population.optimizer.lr sets "
        "it in every member, so every job would train the same population; vary it in one of "
        "the two only"]
    assert not (tmp_path / "p").exists()


# ---- wandb sweep --------------------------------------------------------------------------


def test_wandb_sweep_definition_gives_valid_hydra_overrides():
    """Expand the command as ``wandb agent`` does; the overrides compose and validate."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    from snntrain import surrogates
    from snntrain.config import validate
    from snntrain.surrogates import from_config as build_surrogate

    sweep = yaml.safe_load((ROOT / "scripts" / "wandb_sweep.yaml").read_text())
    assert sweep["method"] == "bayes"
    assert sweep["metric"] == {"name": "best_val_accuracy", "goal": "maximize"}
    assert sweep["command"] == ["${env}", "python", "-m", "snntrain", "${args_no_hyphens}"]
    names = sweep["parameters"]["surrogate"]["values"]
    assert set(names) <= set(surrogates.available())
    for pick in (0, -1):  # the low and the high end of every range
        args = {}
        for key, spec in sweep["parameters"].items():
            if "value" in spec:
                args[key] = {"value": spec["value"]}
            elif "values" in spec:
                args[key] = {"value": spec["values"][pick]}
            else:
                args[key] = {"value": [spec["min"], spec["max"]][pick]}
        argv = []  # the loop in wandb_agent.Agent._command_run
        macros = {**sweep_utils.create_sweep_command_args({"args": args}), "env": ["/usr/bin/env"]}
        for c in sweep_utils.create_sweep_command(list(sweep["command"])):
            argv += macros.get(c[2:-1], []) if c.startswith("${") else [c]
        assert argv[:4] == ["/usr/bin/env", "python", "-m", "snntrain"]
        cfg = compose(argv[4:])
        validate(cfg)
        assert build_surrogate(cfg.surrogate).alpha == pytest.approx(
            args["surrogate.alpha"]["value"]
        )
        assert cfg.model.neuron.beta == pytest.approx(args["model.neuron.beta"]["value"])


# ---- a real multirun ----------------------------------------------------------------------


GRID = {("sigmoid", 1.0), ("sigmoid", 2.0), ("softsign", 1.0), ("softsign", 2.0)}


GRID_STDOUT: dict[Path, str] = {}  # what the multirun printed (the sweep report's verdict)


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory) -> Path:
    """``python -m snntrain -m`` over 2 surrogates x 2 alphas x 1 seed, 1 epoch each, with
    ``-m`` between overrides (Hydra alone stops there with "unrecognized arguments")."""
    sweep_dir = tmp_path_factory.mktemp("sweeps") / "multirun" / "grid-test"
    p = cli(
        "surrogate=sigmoid,softsign",
        "-m",
        "surrogate.alpha=1,2",
        "trainer.epochs=1",
        "model.hidden=[32]",
        "T=5",
        "dataset=digits",
        "logger.mode=offline",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep_dir}",
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    GRID_STDOUT[sweep_dir] = p.stdout
    return sweep_dir


def _run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(d for d in sweep_dir.iterdir() if (d / "config.yaml").is_file())


@pytest.mark.slow
def test_grid_multirun_writes_one_run_dir_per_job(grid_sweep):
    runs = _run_dirs(grid_sweep)
    assert len(runs) == 4
    found = set()
    for d in runs:
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        found.add((cfg["surrogate"]["name"], float(cfg["surrogate"]["alpha"])))
        assert json.loads((d / "summary.json").read_text())["status"] == "completed"
    assert found == GRID


@pytest.mark.slow
def test_grid_multirun_wandb_runs_share_a_group_and_carry_tags_and_config(grid_sweep):
    runs = _run_dirs(grid_sweep)
    for d in runs:
        files = list(d.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(files) == 1, d
        wb = read_wandb_run(files[0])
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        s = cfg["surrogate"]
        assert wb["group"] == "grid-test"  # named after the sweep
        assert {
            f"surrogate={s['name']}",
            f"alpha={float(s['alpha']):g}",
            "model=mlp",
            "dataset=digits",
            "seed=0",
        } <= set(wb["tags"])
        assert wb["config"]["surrogate"] == s
        assert wb["config"]["model"]["name"] == "mlp"
        assert wb["config"]["dataset"]["name"] == "digits" and wb["config"]["seed"] == 0
        summary = json.loads((d / "summary.json").read_text())
        for key in ("best_val_accuracy", "test_accuracy"):
            assert wb["summary"][key] == pytest.approx(summary[key])
        assert {"surrogate/grad", "grad_norm/fc0", "rate/lif0"} <= wb["history_keys"]


@pytest.mark.slow
def test_report_on_the_multirun_matches_the_summaries(grid_sweep):
    assert report.main([str(grid_sweep)]) == 0
    out = grid_sweep / "report"
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    by_key = {(r["surrogate"], float(r["alpha"])): r for r in rows}
    assert set(by_key) == GRID
    for d in (d for d in grid_sweep.iterdir() if (d / "summary.json").is_file()):
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        summary = json.loads((d / "summary.json").read_text())
        row = by_key[(cfg["surrogate"]["name"], float(cfg["surrogate"]["alpha"]))]
        assert row["n"] == "1" and row["best_val_accuracy_std"] == ""
        assert float(row["best_val_accuracy_mean"]) == summary["best_val_accuracy"]
        assert float(row["test_accuracy_mean"]) == summary["test_accuracy"]
        assert float(row["wall_time_s_mean"]) == summary["wall_time_s"]
        rates = summary["firing_rates"]
        assert float(row["firing_rate_mean"]) == pytest.approx(sum(rates.values()) / len(rates))
    html = (out / "index.html").read_text()
    for name, (h, w) in {
        "accuracy_vs_alpha.png": (450, 1200),
        "learning_curves.png": (300, 800),
        "surrogate_gradients.png": (260, 640),
    }.items():
        img = matplotlib.image.imread(out / name)
        assert img.shape[:2] == (h, w) and img.std() > 0.01, name
        assert f'src="{name}"' in html


@pytest.mark.slow
def test_multirun_ends_with_the_sweep_report(grid_sweep):
    """The callback wrote <sweep dir>/report/ and printed the verdict and the path to open."""
    out = grid_sweep / "report"
    assert (out / "index.html").is_file() and (out / "verdict.txt").is_file()
    printed = GRID_STDOUT[grid_sweep]
    verdict = (out / "verdict.txt").read_text().strip()
    assert verdict.splitlines()[0].startswith("Selected by best validation accuracy")
    assert "one seed, so no claim can be made" in verdict
    assert verdict in printed
    assert f"report: {(out / 'index.html').resolve()}" in printed.splitlines()


def _arrays_file(path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.random((40, 8, 8), dtype=np.float32), y_train=np.arange(40) % 4,
             x_test=rng.random((8, 8, 8), dtype=np.float32), y_test=np.arange(8) % 4)
    return path


def test_a_multirun_over_one_bad_arrays_file_is_refused_before_the_sweep_dir(tmp_path):
    """Every job would read the same file: it is checked once, before the sweep directory
    (before: each job made its directory and failed on it)."""
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    p = cli("-m", "logger=none", "dataset=arrays", f"dataset.path={junk}", "seed=1,2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        f"snntrain: error: {junk} is not a readable .npz file (truncated or not a zip "
        "archive: BadZipFile: File is not a zip file)")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_a_multirun_can_sweep_the_arrays_file(tmp_path):
    """``dataset.path=a.npz,b.npz``: refused at the sweep's start as "dataset.path is
    required" (the sweep's own config holds no job's value); each job now reads and checks
    its own file."""
    junk, ok = tmp_path / "junk.npz", _arrays_file(tmp_path / "ok.npz")
    junk.write_bytes(b"not a zip")
    sweep = tmp_path / "sweep"
    p = cli("-m", "logger=none", "dataset=arrays", f"dataset.path={junk},{ok}", "T=2",
            "model.hidden=[8]", "trainer.epochs=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert p.returncode != 0 and "1 job(s) of the sweep failed" in p.stderr
    statuses = sorted(json.loads(s.read_text())["status"] for s in sweep.glob("*/summary.json"))
    assert statuses == ["completed", "failed"]


@pytest.mark.slow
def test_a_failed_job_does_not_end_the_sweep(tmp_path):
    """The jobs after a failed one run (before, the sweep ended there although the README said
    it goes on); the report lists the failure, and the sweep exits with status 2 at its end.
    (The failure is one only the job can see, the data's size: a value its key refuses is
    refused at the sweep's start, test_every_value_of_a_sweep_is_checked_before_its_first_job.)
    """
    sweep_dir = tmp_path / "multirun" / "with-a-failure"
    p = cli(
        "-m",
        "surrogate=sigmoid",
        *TINY,
        "trainer.batch_size=128,5000,64",
        f"hydra.sweep.dir={sweep_dir}",
        timeout=600,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    errors = [x for x in p.stderr.splitlines() if x.startswith("snntrain: error:")]
    assert errors[0].startswith("snntrain: error: job 1 (") and "batch_size" in errors[0]
    assert str(sweep_dir) in errors[0]
    assert errors[-1].startswith("snntrain: error: 1 job(s) of the sweep failed (1-")
    statuses = sorted(json.loads(p.read_text())["status"]
                      for p in sweep_dir.glob("*/summary.json"))
    assert statuses == ["completed", "completed", "failed"]
    page = (sweep_dir / "report" / "index.html").read_text()
    assert "Runs not in the means" in page and "larger than the 1294 training examples" in page
    assert "Not in the means: 1 failed and 0 running of 3 runs" in p.stdout
    assert "report: " in p.stdout


# ---- the sweep report callback, the help page, the sweep extra ------------------------------


def test_report_callback_is_configured_and_writes_the_report(tmp_path, capsys):
    from hydra.utils import instantiate
    from test_report import write_run

    from snntrain.callbacks import SweepReport

    cfg = compose([], hydra=True)
    callback = instantiate(cfg.hydra.callbacks.report)
    assert isinstance(callback, SweepReport) and callback.enabled
    for seed, val in enumerate([0.90, 0.92, 0.91]):
        write_run(
            tmp_path / str(seed),
            {"name": "sigmoid", "alpha": 4.0},
            seed,
            [val],
            [0.9],
            {"lif0": 0.1},
            1.0,
        )
    from omegaconf import OmegaConf

    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    printed = capsys.readouterr().out
    assert (tmp_path / "report" / "index.html").is_file()
    assert "Selected by best validation accuracy (mean over seeds): sigmoid" in printed
    assert f"report: {(tmp_path / 'report' / 'index.html').resolve()}" in printed


def test_a_failing_report_never_fails_the_sweep(tmp_path, monkeypatch, capsys):
    from snntrain import callbacks

    assert callbacks.write_sweep_report(tmp_path / "empty") is None  # nothing there
    assert "no finished runs under" in capsys.readouterr().err

    def broken(*args, **kwargs):
        raise RuntimeError("disk full\nmore")

    monkeypatch.setattr(report, "make_report", broken)
    assert callbacks.write_sweep_report(tmp_path) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "snntrain: could not write the sweep report (RuntimeError: disk full); make it with "
        f"`python -m snntrain.report {tmp_path}`"
    ]


def test_missing_sweep_extra_is_one_line_naming_the_extra(monkeypatch):
    from snntrain import callbacks

    monkeypatch.setattr(callbacks, "_installed", lambda module: False)
    for arg in ("hparams_search=optuna", "+hparams_search=optuna", "hydra/sweeper=optuna"):
        msg = callbacks.missing_sweep_extra(["-m", arg, "trainer.epochs=1"])
        assert (
            msg == f"{arg.lstrip('+')} needs the Optuna sweeper, which is not installed: "
            "pip install 'snntrain[sweep]' (in a checkout: pip install -e '.[sweep]')"
        )
    msg = callbacks.missing_sweep_extra(["-m", "hydra/launcher=slurm_gpu"])
    assert msg.startswith("hydra/launcher=slurm_gpu needs the submitit launcher")
    assert callbacks.missing_sweep_extra(["-m", "surrogate=sigmoid,arctan"]) is None
    monkeypatch.setattr(callbacks, "_installed", lambda module: True)
    assert callbacks.missing_sweep_extra(["hparams_search=optuna"]) is None



def test_a_slurm_launcher_off_the_cluster_is_one_line_and_no_sweep(monkeypatch, tmp_path):
    """hydra/launcher=submitit_slurm on a machine without SLURM printed submitit's 26-line
    traceback ("Could not detect "srun"") and then "no finished runs under
    outputs/multirun/..., so no sweep report"."""
    import shutil

    from snntrain import callbacks

    monkeypatch.setattr(shutil, "which", lambda name: None)
    expected = ("hydra/launcher=submitit_slurm needs a SLURM cluster (submitit found no srun on "
                "this machine's PATH): run the sweep on the cluster's login node, or drop "
                "hydra/launcher to run its jobs here")
    assert callbacks.missing_slurm(["-m", "hydra/launcher=submitit_slurm"]) == expected
    assert callbacks.missing_slurm(["--multirun", "hydra/launcher=slurm_gpu"]).startswith(
        "hydra/launcher=slurm_gpu needs a SLURM cluster (submitit found no srun")
    # (Hydra's override for -m: it ran the launcher into submitit's traceback too)
    assert callbacks.missing_slurm(["hydra.mode=MULTIRUN", "hydra/launcher=slurm_gpu"]
                                   ).startswith("hydra/launcher=slurm_gpu needs a SLURM cluster")
    assert callbacks.missing_slurm(["hydra.mode=RUN", "hydra/launcher=slurm_gpu"]) is None
    assert callbacks.missing_slurm(["hydra/launcher=submitit_slurm"]) is None  # (no launcher)
    assert callbacks.missing_slurm(["-m", "hydra/launcher=submitit_local"]) is None
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert callbacks.missing_slurm(["-m", "hydra/launcher=submitit_slurm"]) is None
    monkeypatch.undo()
    if shutil.which("srun") is not None or callbacks.missing_sweep_extra(
            ["hydra/launcher=submitit_slurm"]) is not None:
        pytest.skip("needs the submitit launcher installed and no SLURM on this machine")
    p = cli("-m", "experiment=surrogate_comparison", "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=x", "logger=none", cwd=tmp_path, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert p.stderr.strip().splitlines() == [f"snntrain: error: {expected}"]
    assert "sweep report" not in p.stdout and not (tmp_path / "outputs").exists()


def test_help_is_our_own_page():
    p = cli("--help", timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert out.startswith("snntrain: train spiking neural networks with surrogate gradients")
    assert "__main__" not in out and "Powered by Hydra" not in out
    groups = dict(
        line.split(": ", 1)
        for line in out.split("== Configuration groups")[1].splitlines()[1:]
        if ": " in line and not line.startswith(" ")
    )
    assert set(groups["surrogate"].split(", ")) == set(surrogate_configs())
    assert {"model", "dataset", "encoder", "optimizer", "experiment", "hparams_search"} <= set(
        groups
    )
    examples = [
        line
        for line in out.split("== Examples ==")[1].splitlines()
        if line.startswith("  snntrain")
    ]
    assert len(examples) == 6
    assert any("'trainer.population.surrogate=[sigmoid,arctan]'" in e for e in examples)


def test_a_sweep_config_run_without_multirun_says_so():
    from snntrain.startup import sweep_without_multirun

    if not _optuna_installed():  # (it passed only after test_optuna_config_composes had
        _register_optuna_stub()  # registered the stand-in in the same pytest-xdist worker)
    note = sweep_without_multirun(compose(["experiment=surrogate_comparison"], hydra=True))
    assert note.startswith("this config defines a sweep over surrogate, seed") and "-m" in note
    assert "surrogate.alpha" in sweep_without_multirun(
        compose(["hparams_search=optuna"], hydra=True))
    assert sweep_without_multirun(compose(["surrogate=arctan"], hydra=True)) is None
    assert sweep_without_multirun(compose(["experiment=surrogate_comparison_population"],
                                          hydra=True)) is None


def test_the_multirun_flag_may_stand_anywhere():
    from snntrain.__main__ import flags_first

    assert flags_first(["seed=1", "-m", "surrogate=a,b"]) == ["-m", "seed=1", "surrogate=a,b"]
    assert flags_first(["a=1", "--multirun"]) == ["--multirun", "a=1"]
    assert flags_first(["a=-m", "b=2"]) == ["a=-m", "b=2"]  # a value is not the flag


def test_an_optuna_search_space_the_sweeper_would_refuse_is_one_line():
    """interval(16,0.5), a log interval from 0 or below, direction=sideways and n_trials=0
    ended in the Optuna sweeper's traceback (exit 1), or with n_trials=0 in "no trial of the
    Optuna search completed (each failed job printed its reason above)" with no job run."""
    from omegaconf import OmegaConf

    from snntrain.startup import sweep_range_error

    def error(params=None, task=(), **sweeper):
        return sweep_range_error(OmegaConf.create({"hydra": {
            "sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper."
                        "OptunaSweeper", "direction": "maximize", "n_trials": 2,
                        "params": params or {}, **sweeper},
            "overrides": {"task": list(task)}}}))

    assert error({"surrogate.alpha": "interval(1,8)"}) is None
    assert error({"surrogate.alpha": "interval(16,0.5)"}) == (
        "surrogate.alpha=interval(16,0.5) (hydra.sweeper.params): the interval's low end 16 is "
        "above its high end 0.5; write interval(low, high)")
    assert error(task=["optimizer.lr=tag(log,interval(0,1e-2))"]) == (
        "optimizer.lr=tag(log,interval(0,1e-2)): a log interval needs a low end above 0 (it "
        "has 0); drop tag(log, ...) or start above 0")
    assert error(direction="sideways") == ("hydra.sweeper.direction=sideways is invalid: must "
                                           "be minimize or maximize (snntrain sets it from "
                                           "optimize_metric)")
    assert error(n_trials=0) == "hydra.sweeper.n_trials=0 is invalid: must be an integer >= 1"
    assert error(direction=["minimize", "maximize"]) is None


def test_every_value_of_a_sweep_is_checked_before_its_first_job(tmp_path):
    """Only a sweep's first value was checked at its start: ``trainer.batch_size=64,0``
    trained job 0, then failed job 1 (a typo in a long sweep's 37th value, hours in), and an
    Optuna interval out of the key's range failed every trial (configuration tester)."""
    from conftest import compose
    from omegaconf import OmegaConf

    from snntrain.startup import sweep_value_error

    res = cli("-m", "trainer.batch_size=64,0", "logger=none", "trainer.epochs=1",
              f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "snntrain: error: trainer.batch_size=64,0: trainer.batch_size=0 is invalid: must be an "
        "integer >= 1"], res.stderr[-2000:]
    assert not (tmp_path / "sweep").exists()
    cfg = compose()
    OmegaConf.update(cfg, "hydra", {"overrides": {"task": ["surrogate.alpha=1,2"]}, "sweeper": {
        "params": {"model.neuron.beta": "interval(0.5, 1.5)"}}}, force_add=True)
    assert sweep_value_error(cfg) == (
        "model.neuron.beta=interval(0.5, 1.5) (hydra.sweeper.params): model.neuron.beta=1.5 "
        "is invalid: LIF: beta must be in (0, 1], got 1.5")
    OmegaConf.update(cfg, "hydra.sweeper.params", {"model.neuron.beta": "interval(0.5, 0.9)"})
    assert sweep_value_error(cfg) is None
