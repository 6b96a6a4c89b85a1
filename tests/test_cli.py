"""``python -m snntrain`` end to end, as a user runs it."""

import json
from pathlib import Path

import pytest
import yaml
from _workers import cli


@pytest.mark.slow
def test_cli_end_to_end_with_offline_wandb(tmp_path):
    p = cli("surrogate=softsign", "surrogate.alpha=2", "trainer.epochs=1", "logger.mode=offline",
            "model.hidden=[32]", "T=6", f"hydra.run.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "metrics.jsonl").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["surrogate"] == "SoftSign(alpha=2.0)"
    assert 0.0 < summary["test_accuracy"] <= 1.0
    assert any((tmp_path / "checkpoints").iterdir())
    assert "test_accuracy" in p.stdout  # the final table
    from _wandb import read_wandb_run

    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    logged = read_wandb_run(runs[0])
    assert logged["config"]["surrogate"] == {"name": "softsign", "alpha": 2.0, "normalize": False}
    assert logged["summary"]["test_accuracy"] == summary["test_accuracy"]
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert cfg["surrogate"] == {"name": "softsign", "alpha": 2.0, "normalize": False}


def test_cli_help_and_cfg_job():
    p = cli("--help")
    assert p.returncode == 0 and "surrogate:" in p.stdout and "softsign" in p.stdout
    p = cli("--cfg", "job", "surrogate=arctan", "surrogate.alpha=4")
    assert p.returncode == 0
    job = yaml.safe_load(p.stdout)
    assert job["surrogate"] == {"name": "arctan", "alpha": 4.0, "normalize": False}
    assert job["trainer"]["epochs"] == 30


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.epochs=-1", "trainer.epochs=-1 is invalid: must be an integer >= 1"),
    ("surrogate.alpha=0", "alpha must be finite and > 0, got 0.0"),
    ("optimizer.lr=abc", "optimizer.lr='abc' is invalid: must be a finite number > 0.0"),
    ("model.hidden=[]", "model.hidden must be a non-empty list of sizes >= 1, got []"),
    ("trainer.parallel=magic", "trainer.parallel='magic' is invalid: must be one of auto, none"),
    ("+surrogate.gamma=2", "unknown key surrogate.gamma"),
])
def test_bad_values_give_one_line_errors(tmp_path, override, expected):
    p = cli("logger=none", override, f"hydra.run.dir={tmp_path}")
    assert p.returncode == 2, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("snntrain: error: ") and expected in last, last
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(("overrides", "expected"), [
    # refused once the members were built, after config.yaml and a failed summary.json
    (["trainer.population.seed=[0,1]", "trainer.fused_epoch=true"],
     "trainer.population: trainer.fused_epoch=true is not supported with a population; set "
     "trainer.fused_epoch=false"),
    # a member's value its builder refuses
    (["trainer.population.neuron.beta=[0.5,2]"],
     "trainer.population member 1-model.neuron.beta=2: model.neuron.beta=2 is invalid: LIF: "
     "beta must be in (0, 1], got 2"),
    # a value a surrogate axis drops (Hydra's config was not yet set at start-up)
    (["trainer.population.surrogate.name=[sigmoid,arctan]", "surrogate.alpha=3"],
     "surrogate.alpha=3 would be dropped"),
    # more devices than the process has (a solo run; a population's mesh)
    (["trainer.devices=5"], "trainer.devices=5: this process has 1 local device(s); valid: 1..1"),
    # cpu_devices=1 is one device: a single run's own value was taken as swept by a multirun
    # and split the CPU into every core, where the mesh then trained on two
    (["trainer.population.seed=[0,1]", "trainer.population.cpu_devices=1",
      "trainer.population.mesh=[2,1]"],
     "trainer.population.mesh=[2,1] uses 2 devices, but this run trains on 1"),
    # a value that cannot work, without an axis (a note that it had no effect, then a run)
    (["trainer.population.cpu_devices=0"], "trainer.population.cpu_devices=0 is invalid"),
    # both spellings of the surrogate axis: Hydra kept the last and dropped the other
    (["trainer.population.surrogate=[sigmoid,arctan]", "trainer.population.surrogate.name=[erf]"],
     "set the same axis (trainer.population.surrogate=[...] is short for "
     "trainer.population.surrogate.name=[...]); give the surrogate types once"),
])
def test_refused_before_the_run_directory_exists(tmp_path, overrides, expected):
    """Values checkable without data were refused only after the run directory, its
    .hydra/ files, config.yaml and a failed summary.json had been written."""
    p = cli("logger=none", "T=5", "model.hidden=[8]", *overrides,
            f"hydra.run.dir={tmp_path / 'run'}")
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.startswith("snntrain: error: ") and expected in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert not (tmp_path / "run").exists()


def test_a_mesh_the_members_do_not_divide_is_refused_before_the_run_directory(tmp_path):
    """It was refused when the group was built, after the run directory was written."""
    p = cli("logger=none", "T=5", "model.hidden=[8]", "trainer.population.seed=[0,1,2]",
            "trainer.population.mesh=[2,1]", "trainer.population.chunk=2",
            f"hydra.run.dir={tmp_path / 'run'}", devices=2)
    assert p.returncode == 2 and p.stderr == (
        "snntrain: error: trainer.population.mesh=[2,1]: 1 members do not divide over 2 "
        "devices on the members axis; valid: a divisor of 1 (group 1 of "
        "trainer.population.chunk=2 has 1 members: choose a chunk or mesh that divides every "
        "group)\n"), p.stderr[-2000:]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_a_refused_attempt_on_a_completed_run_keeps_its_hydra_files(tmp_path):
    """A config error found once the run started left the completed run's summary.json, but
    Hydra's .hydra/ files then listed the refused attempt's overrides."""
    run = tmp_path / "run"
    base = ("logger=none", "T=5", "model.hidden=[8]", "trainer.epochs=1", f"hydra.run.dir={run}")
    assert cli(*base).returncode == 0
    before = {p.name: p.read_bytes() for p in (run / ".hydra").iterdir()}
    summary = (run / "summary.json").read_bytes()
    p = cli(*base, "surrogate=sigmoid")  # (refused once its checkpoint is read)
    assert p.returncode == 2 and "is from an incompatible run: surrogate" in p.stderr, \
        p.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in (run / ".hydra").iterdir()} == before
    assert (run / "summary.json").read_bytes() == summary


def test_unknown_group_choice_lists_choices(tmp_path):
    p = cli("surrogate=nope", f"hydra.run.dir={tmp_path}")
    assert p.returncode == 2
    assert p.stderr.startswith("snntrain: error: surrogate=nope: no such option; valid: arctan, "
                               "boxcar,") and "softsign" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("overrides, expected", [
    # Hydra alone: "Could not override ... Key 'epoch' is not in struct ..." over 5 lines
    (["trainer.epoch=3"], "trainer.epoch is not a config key (trainer has: async_checkpointing, "
                          "batch_size,"),
    (["trainer.epoch=3"], "did you mean trainer.epochs? to add a key it does not have, write "
                          "+trainer.epoch=3"),
    (["logger=none", "sed=1"], "sed is not a config key (the config has: T, dataset, encoder,"),
    (["model/neuron=izhikevich"], "model/neuron=izhikevich: no such option; valid: alif, if, lif"),
    # Hydra's own line ("Could not find 'experiment/'", options and search path on one line)
    (["experiment="], "experiment=: an option name is required; valid: alpha_scan, "
                      "alpha_scan_population, dvs_gesture_conv,"),
    (["seed=1", "a=[1,2"], "cannot parse the override 'a=[1,2': no viable alternative"),
    # Hydra's ValueError traceback ("Config group override must be a string or a list")
    (["logger=none", "model=null"], "model=null: a config group takes the name of one of its "
                                    "options; `python -m snntrain --help` lists those of model"),
    (["=3"], "cannot apply the override '=3': it names no key"),
    # "trainer is not a config key (the config has: ..., trainer); did you mean trainer?"
    (["model.neuron={a:1}"], "model.neuron={a:1}: model.neuron is a config group or node; set "
                             "its keys one by one (model.neuron.<key>=<value>) or pick an "
                             "option (model/neuron=<name>)"),
    # two overrides of a deleted node: the handler's own second composition raised
    (["trainer.epochs=1", "trainer.progress=false", "~trainer"],
     "trainer.epochs=1 cannot be applied: Key 'trainer' is not in struct"),
    # not a group: no option to pick
    (["trainer.population.surrogate={name:[boxcar],width:[1]}"],
     "trainer.population.surrogate is a config group or node; set its keys one by one "
     "(trainer.population.surrogate.<key>=<value>)"),
])
def test_overrides_hydra_cannot_compose_get_one_line(overrides, expected):
    from snntrain.startup import composition_error

    msg = composition_error(overrides)
    assert msg is not None and expected in msg and "\n" not in msg, msg


def test_composable_overrides_and_flags_are_left_to_hydra():
    from snntrain.startup import composition_error

    assert composition_error(["logger=none", "trainer.epochs=2", "+foo=1"]) is None
    # --cfg/--info/--help: their overrides are checked as a run's (Hydra's multi-line error
    # and status 1 before), the flags and their values left to Hydra
    assert "did you mean trainer.epochs?" in composition_error(["--cfg", "job", "trainer.epoch=1"])
    assert composition_error(["--help", "surrogate=nope"]).startswith("surrogate=nope: no such ")
    assert "did you mean trainer.epochs?" in composition_error(["--cfg=job", "trainer.epoch=1"])
    # Hydra does one of them (a ValueError traceback)
    assert composition_error(["-m", "--cfg", "job", "surrogate=sigmoid,nope"]) == (
        "--cfg, -m: Hydra does one of -m, --cfg and --info at a time; drop the others")
    for ok in (["--cfg", "job"], ["--info", "config", "seed=1"], ["-p", "trainer", "-c", "all"],
               ["--info"], ["--hydra-help"], ["--cfg", "hydra", "--resolve", "seed=2"],
               # Hydra's plugin list ignores overrides; its own help takes hydra.* ones
               ["--info", "plugins", "trainer.epoch=3"], ["--info=plugins", "trainer.epoch=3"],
               ["--hydra-help", "hydra.job.name=x"]):
        assert composition_error(ok) is None, ok
    # a list for a group: Hydra's TypeError traceback (trainer), "appears more than once in
    # the final defaults list" (model), or a merge of both surrogates' configs (surrogate)
    assert composition_error(["trainer=[0,1]"]) == (
        "trainer=[0,1]: a config group takes the name of one of its options, not a list; to "
        "train several, use a multirun (python -m snntrain -m trainer=<a>,<b>)")
    assert composition_error(["surrogate=[sigmoid,arctan]"]).endswith(
        "(python -m snntrain -m surrogate=<a>,<b>) or a population "
        "(trainer.population.surrogate=[<a>,<b>])")
    assert "-m model/neuron=<a>,<b>" in composition_error(["model.neuron=[lif]"])
    # a node given a list: "Error merging override ...; Cannot merge DictConfig with ListConfig"
    assert composition_error(["trainer.population=[0,1]"]) == (
        "trainer.population=[0,1]: trainer.population is a config node, not a list; set its "
        "keys one by one (trainer.population.<key>=<value>)")
    # Hydra's own help with a task override ended in its ConfigCompositionException traceback
    assert composition_error(["--hydra-help", "seed=1", "hydra.job.name=x"]) == (
        "seed=1: --hydra-help shows Hydra's own help and takes only hydra.* overrides; drop "
        "the others (python -m snntrain --help shows this program's options)")
    assert composition_error([]) is None
    import importlib.util

    try:
        optuna = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
    except ModuleNotFoundError:  # (no hydra_plugins package at all)
        optuna = False
    for ok in (["-m", "surrogate=sigmoid,arctan", "surrogate.alpha=1,2", "+foo=1,2"],
               ["-m", "surrogate.alpha=interval(1,4)"],
               *([["-m", "hparams_search=optuna"]] if optuna else [])):  # (the sweep extra;
        assert composition_error(ok) is None, ok  # without it main() says to install it first)


def test_a_multirun_that_hydra_cannot_compose_gets_one_line():
    """Hydra's several lines, then "no finished runs ... so no sweep report" (and an empty
    sweep directory) for a misspelt key or an option that does not exist in a -m sweep."""
    from snntrain.startup import composition_error, sweep_samples

    assert composition_error(["-m", "trainer.epoch=1,2"]).startswith(
        "trainer.epoch is not a config key (trainer has: async_checkpointing, ")
    assert composition_error(["-m", "trainer.epoch=1,2"]).endswith(
        "did you mean trainer.epochs? to add a key it does not have, write +trainer.epoch=1,2")
    assert composition_error(["-m", "surrogate=sigmoid,nosuch"]).startswith(
        "surrogate=nosuch: no such option; valid: arctan, boxcar, ")
    assert composition_error(["--multirun", "model=mlp,conv", "model.hidden=[8]"]).startswith(
        "model.hidden is not a config key (model has: channels, ")  # conv has no hidden
    # Hydra's own keys (compose() leaves that node out: it said "hydra is not a config key")
    assert composition_error(["-m", "hydra.job.env_set.X=1", "seed=1,2"]) == (
        "hydra.job.env_set.X is not a key of Hydra's config; to add a key it does not have, "
        "write +hydra.job.env_set.X=1")
    # a misspelt parent is named as the key (it said "trainer.populaton has: ")
    assert composition_error(["trainer.populaton.seed=1"]).startswith(
        "trainer.populaton is not a config key (trainer has: ")
    # every option of a config group, one value of any other key (a key composes with any
    # value: `seed=range(0,40)` composed 32 times, 9 s)
    runs, shown = sweep_samples(["surrogate=sigmoid,arctan", "b=x", "model=mlp,conv,recurrent",
                                 "c=range(1,4)", "d=interval(0,1)"])
    first = ["surrogate=sigmoid", "b=x", "model=mlp", "c=1"]
    assert runs == [first, ["surrogate=arctan", *first[1:]],
                    [*first[:2], "model=conv", "c=1"], [*first[:2], "model=recurrent", "c=1"]]
    assert shown == {"surrogate=sigmoid": "surrogate=sigmoid,arctan",
                     "surrogate=arctan": "surrogate=sigmoid,arctan",
                     "model=mlp": "model=mlp,conv,recurrent",
                     "model=conv": "model=mlp,conv,recurrent",
                     "model=recurrent": "model=mlp,conv,recurrent", "c=1": "c=range(1,4)"}


def test_console_script_is_installed():
    import shutil

    assert shutil.which("snntrain") is not None
    assert shutil.which("snntrain-report") is not None


def test_configs_found_from_an_installed_wheel(tmp_path):
    """Build the wheel, install it into a fresh venv's site dir and compose from there."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(wheel_dir), str(root)], check=True, capture_output=True)
    wheel = next(wheel_dir.glob("snntrain-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import snntrain.paths as p; print(p.CONFIG_DIR); "
            "assert (p.CONFIG_DIR / 'config.yaml').is_file()")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, text=True,
                         capture_output=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"})
    assert out.stdout.strip() == str(target / "snntrain" / "conf")
    assert (target / "snntrain" / "conf" / "surrogate" / "softsign.yaml").is_file()


# the optional extras (pyproject.toml): README's first command installs none of them
EXTRAS = ("nir", "h5py", "tonic", "spyx", "tensorflow", "optuna")


def _without_extras(module: str, *argv: str):
    """``python -m module ARGV`` in a subprocess where no optional extra can be imported."""
    import subprocess
    import sys

    from _workers import ROOT, env

    code = (f"import runpy, sys\nfor m in {EXTRAS!r}:\n    sys.modules[m] = None\n"
            f"sys.argv = {[module, *argv]!r}\nrunpy.run_module({module!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(1), text=True,
                          capture_output=True, timeout=300)


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_the_base_install_trains_without_any_optional_extra(tmp_path):
    """README's first command (``pip install -e .``, then ``python -m snntrain``) must train
    without the extras. (Stop 26 broke it: the trainer imported the NIR module, which needed
    ``nir`` at import; CI, which installs the test extra, did not see it.) The NIR command
    line then says in one line what to install."""
    p = _without_extras("snntrain", "trainer.epochs=1", "logger=none", "trainer.progress=false",
                        "model.hidden=[32]", "T=6", f"hydra.run.dir={tmp_path / 'run'}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    p = _without_extras("snntrain.export", str(tmp_path / "run"), "--nir", str(tmp_path / "m.nir"))
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == (
        "snntrain: error: NIR export and import need the nir package: pip install "
        "'snntrain[nir]' (in a checkout: pip install -e '.[nir]')")


@pytest.mark.slow
def test_a_population_into_a_closed_pipe_still_writes_its_report(tmp_path):
    """`python -m snntrain ... | head -1`: rich's console ended the run with SystemExit(1) at
    the summary, before a population's report was written. It goes quiet instead."""
    import os
    import subprocess
    import sys

    from _workers import ROOT, env

    read, write = os.pipe()
    os.close(read)  # the reader (head) has gone
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "snntrain", "logger=none", "trainer.progress=false", "T=2",
             "model.hidden=[8]", "trainer.epochs=1", "trainer.population.seed=[0,1]",
             f"hydra.run.dir={tmp_path / 'run'}"],
            cwd=ROOT, env=env(1), stdout=write, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "report" / "index.html").is_file()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["completed"] == 2


IMPORT_ORDER = r"""
import signal, sys
sys.argv = [sys.argv[0].replace("-c", "") + "/snntrain/__main__.py"]
seen = []


class Finder:  # records the handlers when OmegaConf or Hydra (the heavy imports) is imported
    def find_spec(self, name, path=None, target=None):
        if name in ("omegaconf", "hydra") and not seen:
            seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))


sys.meta_path.insert(0, Finder())
import snntrain.__main__ as m
print(seen[0] == (m._interrupted, m._interrupted))
"""


def test_a_signal_during_the_imports_gets_the_one_line_handler():
    """Ctrl-C in the first second (Hydra's and JAX's imports, before main()) printed a
    KeyboardInterrupt traceback, and SIGTERM ended the run without a word: the handlers are
    now in place before the first heavy import."""
    from _workers import python

    assert python(IMPORT_ORDER).stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("count", ["0", "-3", "abc"])
def test_a_bad_simulated_device_count_is_one_line_before_the_run_directory(tmp_path, count):
    """XLA_FLAGS=--xla_force_host_platform_device_count=0 (or -3) was JAX's traceback (exit
    1) and left a failed run directory; abc, XLA's 94-line listing of its flags."""
    import subprocess
    import sys

    from _workers import ROOT, env

    e = env(None) | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
    p = subprocess.run([sys.executable, "-m", "snntrain", "logger=none",
                        f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and not (tmp_path / "run").exists(), p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == (
        f"snntrain: error: XLA_FLAGS: --xla_force_host_platform_device_count={count} is "
        "invalid: must be an integer >= 1 (the number of CPU devices to simulate)")


def test_hydra_mode_multirun_is_a_multirun_for_the_composition_check():
    """``hydra.mode=MULTIRUN seed=0,1`` (Hydra runs both jobs) was composed as one run and
    refused as "Ambiguous value for argument 'seed=0,1' ... add --multirun" (reviewer); its
    jobs are checked as a sweep's now, and their errors still named."""
    from snntrain.startup import composition_error, multirun_requested

    for mode in ("hydra.mode=MULTIRUN", "hydra.mode=multirun", "+hydra.mode=MULTIRUN"):
        assert multirun_requested([mode, "seed=0,1"])
        assert composition_error([mode, "seed=0,1", "logger=none"]) is None, mode
    assert "surrogate=nope" in composition_error(["hydra.mode=MULTIRUN", "surrogate=sigmoid,nope"])
    assert "Ambiguous value" in composition_error(["seed=0,1"])  # (a single run's: Hydra's)
    assert not multirun_requested(["hydra.mode=RUN", "seed=1"])


def test_a_logging_handler_that_cannot_write_prints_no_traceback():
    """On a full disk wandb's log handlers printed a "--- Logging error ---" traceback for every
    record, dozens under the run's one-line error (robustness tester): the command line's
    logging setup (progress.console_notes, and the worker's) turns them off."""
    import subprocess
    import sys

    code = ("import logging\n{setup}\nh = logging.StreamHandler(open('/dev/full', 'w'))\n"
            "logging.getLogger('wandb').addHandler(h)\nlogging.getLogger('wandb').error('x')\n")
    for setup, shown in (("", True),
                         ("from snntrain.progress import console_notes; console_notes()", False)):
        res = subprocess.run([sys.executable, "-c", code.format(setup=setup)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and ("--- Logging error ---" in res.stderr) == shown, (
            setup, res.stderr[-500:])
