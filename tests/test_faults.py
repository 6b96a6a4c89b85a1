"""Never lose a run, part 2: checkpoint boundaries, two runs on one directory, every checkpoint
unreadable, a failed asynchronous save, and never overwriting a completed summary.

The reference is one uninterrupted run that checkpoints after every step (the cadence of
checkpoints does not change the numbers); each boundary test resumes a copy of one of its
checkpoints in a fresh directory and must reproduce the rest of the run exactly.
"""

import json
import re
import shutil
import signal
from pathlib import Path

import jax
import numpy as np
import pytest
from _workers import cli
from conftest import compose

from snntrain import rundir, runstate, train, writers
from snntrain.checkpoint import CheckpointError

# digits: 1294 training examples, batch 64 -> 21 steps per epoch, 42 in all
SPE, EPOCHS = 21, 2
RUN = ("trainer.epochs=2", "trainer.log_every=1", "trainer.keep_checkpoints=100")
TIMING = ("samples_per_s",)


def _records(run_dir: Path) -> list[dict]:
    if not (run_dir / "metrics.jsonl").exists():  # e.g. a finished run resumed: nothing new
        return []
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def _summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    return {k: s[k] for k in ("status", "steps", "epochs", "test_accuracy", "test_loss",
                              "train_loss", "val_accuracy", "best_val_accuracy",
                              "best_val_epoch", "firing_rates")}


def _params(run_dir: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(train.params_of(run_dir))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    train.train_and_evaluate(compose(*RUN, "trainer.checkpoint_every=1"), out)
    return out


def _resume_from(reference: Path, step: int, run_dir: Path) -> None:
    shutil.copytree(reference / "checkpoints" / str(step), run_dir / "checkpoints" / str(step))
    train.train_and_evaluate(compose(*RUN, "trainer.checkpoint_every=1"), run_dir)


def _assert_continues(reference: Path, run_dir: Path, after: int) -> None:
    assert _records(run_dir) == [r for r in _records(reference) if r["step"] > after]
    assert _summary(run_dir) == _summary(reference)
    for a, b in zip(_params(reference), _params(run_dir), strict=True):
        np.testing.assert_array_equal(a, b)


def test_epoch_end_checkpoint_holds_no_finished_epoch_sums(reference):
    """A periodic save never lands on an epoch's last step before its evaluation: the one
    checkpoint at that step is the epoch-end one, positioned at the next epoch's start."""
    from snntrain.checkpoint import Checkpoints

    meta = Checkpoints(reference / "checkpoints", write=False).read_meta(SPE)
    assert (meta["epoch"], meta["batch_in_epoch"], meta["epoch_acc"]) == (1, 0, {})
    assert meta["last_epoch"]["epoch"] == 1
    mid = Checkpoints(reference / "checkpoints", write=False).read_meta(SPE + 1)
    assert (mid["epoch"], mid["batch_in_epoch"], mid["epoch_acc"]["count"]) == (1, 1, 64.0)


@pytest.mark.parametrize("step", [SPE])
def test_resume_at_epoch_end(reference, tmp_path, step):
    _resume_from(reference, step, tmp_path)
    _assert_continues(reference, tmp_path, step)


@pytest.mark.slow
@pytest.mark.parametrize("step", [1, SPE - 1, SPE + 1, SPE * EPOCHS - 1, SPE * EPOCHS])
def test_resume_at_every_boundary(reference, tmp_path, step):
    """First step, just before an epoch's end, first step of an epoch, the run's last step
    before its end, and the finished run (nothing left to train: the summary is the same)."""
    _resume_from(reference, step, tmp_path)
    _assert_continues(reference, tmp_path, step)


def test_preempted_on_an_epochs_last_step_resumes_exactly(reference, tmp_path, monkeypatch):
    """SIGTERM on the last step of epoch 1: the checkpoint holds the whole epoch's sums and
    ``batch_in_epoch == steps_per_epoch``; the resumed run evaluates that epoch first."""
    real_accept = runstate.DivergencePolicy.accept

    def accept(self, step, metrics):
        if step == SPE:
            signal.raise_signal(signal.SIGTERM)
        return real_accept(self, step, metrics)

    monkeypatch.setattr(runstate.DivergencePolicy, "accept", accept)
    with pytest.raises(runstate.Preempted, match=f"at step {SPE} ") as info:
        train.train_and_evaluate(compose(*RUN), tmp_path)
    # (called from Python, not the command line: the hint is the call, not pytest's argv)
    assert f"to resume, run: train_and_evaluate(<the same config>, '{tmp_path}') again" in str(
        info.value)
    monkeypatch.undo()
    from snntrain.checkpoint import Checkpoints

    meta = Checkpoints(tmp_path / "checkpoints", write=False).read_meta(SPE)
    assert (meta["epoch"], meta["batch_in_epoch"], meta["epoch_acc"]["count"]) == (0, SPE, 1294)
    train.train_and_evaluate(compose(*RUN), tmp_path)
    assert _records(tmp_path) == _records(reference)
    assert _summary(tmp_path) == _summary(reference)


def test_a_finished_run_trained_on_and_preempted_is_recorded_preempted(tmp_path, monkeypatch):
    """A completed run resumed with more epochs and then pre-empted kept "completed" with its
    old numbers (a completed summary.json was never replaced), so the report offered no
    resume; a pre-emption before it trained on keeps the completed record."""
    first = train.train_and_evaluate(compose("trainer.epochs=1", *RUN[1:]), tmp_path)
    assert first["status"] == "completed" and first["steps"] == SPE
    real_accept = runstate.DivergencePolicy.accept

    def accept(self, step, metrics):
        if step == SPE + 3:
            signal.raise_signal(signal.SIGTERM)
        return real_accept(self, step, metrics)

    monkeypatch.setattr(runstate.DivergencePolicy, "accept", accept)
    with pytest.raises(runstate.Preempted, match=f"at step {SPE + 3} "):
        train.train_and_evaluate(compose(*RUN), tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert (saved["status"], saved["steps"]) == ("preempted", SPE + 3)
    # the writer's rule: a completed record stays unless the attempt trained past it
    path = tmp_path / "summary.json"
    for steps, kept in ((SPE, True), (SPE + 1, False), (None, True)):
        path.write_text(json.dumps({"status": "completed", "steps": SPE}))
        assert writers.kept_summary(path, steps) is kept


@pytest.mark.slow
def test_crash_during_evaluation_resumes_exactly(reference, tmp_path, monkeypatch):
    real_evaluate, calls = train.evaluate, {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2's validation (epoch 1: val, test)
            raise RuntimeError("killed during evaluation")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="killed during evaluation"):
        train.train_and_evaluate(compose(*RUN, "trainer.checkpoint_every=5"), tmp_path)
    monkeypatch.undo()
    train.train_and_evaluate(compose(*RUN, "trainer.checkpoint_every=5"), tmp_path)
    assert _records(tmp_path) == _records(reference)
    assert _summary(tmp_path) == _summary(reference)


@pytest.mark.slow
def test_second_run_on_a_held_directory_stops_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "run"
    train.train_and_evaluate(compose("trainer.epochs=1"), run_dir)
    _hydra_files_of_the_run(run_dir)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")
              if p.is_file() and p.name != ".lock"}
    hydra_before = {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
    with rundir.RunLock(run_dir):  # this live process holds the directory
        p = cli("logger=none", "trainer.progress=false", "model.hidden=[32]", "T=6",
                "trainer.batch_size=64", "trainer.epochs=2", f"hydra.run.dir={run_dir}")
    assert p.returncode == 2, p.stderr[-2000:]
    line = p.stderr.strip().splitlines()[-1]
    assert "Traceback" not in p.stderr
    assert line.startswith("snntrain: error: run directory") and "in use by process" in line
    import os

    assert f"process {os.getpid()} " in line
    # Hydra rewrote .hydra/ before the attempt started; the refused attempt put it back.
    assert {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == hydra_before
    after = {p: p.stat().st_mtime_ns for p in before if ".hydra" not in p.parts}
    assert after == {p: t for p, t in before.items() if ".hydra" not in p.parts}


def _hydra_files_of_the_run(run_dir: Path) -> None:
    """What Hydra leaves in a run's .hydra/ (the run itself trained in-process, without it)."""
    (run_dir / ".hydra").mkdir()
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text(f"# the first attempt's {name}\n")


def test_lock_is_free_again_after_the_holder_exits(tmp_path):
    with rundir.RunLock(tmp_path), pytest.raises(rundir.RunDirBusy), rundir.RunLock(tmp_path):
        pass
    with rundir.RunLock(tmp_path):  # released on exit
        pass
    # taken at start-up (hold) and taken over by the run's own lock, then released
    import fcntl
    import os

    def free(run_dir) -> bool:  # whether another open file can lock it (as another process)
        fd = os.open(run_dir / rundir.LOCK_NAME, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    rundir.hold(tmp_path / "new")
    rundir.hold(tmp_path / "new")  # (again in this process: a notebook's second main())
    assert not free(tmp_path / "new")
    with rundir.RunLock(tmp_path / "new"):
        assert not free(tmp_path / "new")
    assert free(tmp_path / "new")
    # the same directory by another name (Hydra names hydra.run.dir=a/../b as b): the run
    # took its own lock for another run's
    rundir.hold(tmp_path / "x" / ".." / "other")
    with rundir.RunLock(tmp_path / "other"):
        assert not free(tmp_path / "other")


def test_a_second_run_is_refused_before_hydra_writes_its_files(tmp_path):
    """Two runs started a second apart on one hydra.run.dir: the second, refused by the task
    function's lock, had already let Hydra write its .hydra/ over the first run's (when the
    first had not written its own yet, there was nothing to put back). It stops at start-up
    now, and writes nothing there."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with rundir.RunLock(run_dir):  # the first run, before Hydra wrote its .hydra/
        p = cli("logger=none", "trainer.progress=false", "model.hidden=[32]", "T=6",
                "trainer.epochs=1", f"hydra.run.dir={run_dir}")
    assert p.returncode == 2 and "in use by process" in p.stderr, p.stderr[-2000:]
    assert sorted(f.name for f in run_dir.iterdir()) == [".lock"]


@pytest.mark.slow
def test_every_checkpoint_unreadable_starts_afresh_and_keeps_the_old_files(tmp_path, capfd):
    cfg = compose("trainer.epochs=2")
    train.train_and_evaluate(cfg, tmp_path)
    reference = _records(tmp_path)
    for f in (tmp_path / "checkpoints").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    (tmp_path / "summary.json").unlink()
    capfd.readouterr()
    train.train_and_evaluate(cfg, tmp_path)
    err = capfd.readouterr().err
    assert "no usable checkpoint in" in err and "starting from step 0" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    kept = sorted(p.name for p in tmp_path.iterdir() if ".set-aside-" in p.name)
    # (its config.yaml with it: the set-aside records keep the config that made them)
    assert [k.split(".set-aside-")[0] for k in kept] == ["checkpoints", "config.yaml",
                                                         "metrics.jsonl"]
    assert _records(tmp_path) == reference
    old = [json.loads(x) for x in (tmp_path / kept[2]).read_text().splitlines()]
    assert [r["step"] for r in old] == [r["step"] for r in reference]


def test_failed_async_save_is_reported_at_once_naming_its_checkpoint(tmp_path, monkeypatch):
    """The save of checkpoint 7 fails in the background: the error names 7 and stops the run
    within the next chunk of steps, not at a later save."""
    import orbax.checkpoint as ocp

    real = ocp.CheckpointManager.check_for_errors
    failing = {"armed": False}
    real_save = ocp.CheckpointManager.save

    def save(self, step, *args, **kwargs):
        failing["armed"] = step == 7
        return real_save(self, step, *args, **kwargs)

    def check_for_errors(self):
        if failing["armed"]:
            raise OSError(28, "No space left on device")
        return real(self)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    monkeypatch.setattr(ocp.CheckpointManager, "check_for_errors", check_for_errors)
    with pytest.raises(CheckpointError) as info:
        train.train_and_evaluate(compose("trainer.epochs=2", "trainer.checkpoint_every=7",
                                         "trainer.log_every=1"), tmp_path)
    msg = str(info.value)
    assert msg.startswith("saving checkpoint 7 in ") and "No space left" in msg
    last = _records(tmp_path)[-1]["step"] if (tmp_path / "metrics.jsonl").exists() else 0
    assert last < 14  # reported before the next save would have been attempted


def test_a_failed_save_found_at_the_next_save_names_its_own_step(tmp_path):
    """orbax finalizes a save when the next starts: a full disk during save 33 surfaced at
    save 44, and the message named 44 (and cut the path short at 160 characters)."""
    from snntrain.checkpoint import Checkpoints

    ckpts = Checkpoints(tmp_path / "checkpoints")
    tmp = tmp_path / "checkpoints" / "33.orbax-checkpoint-tmp" / "state" / "ocdbt.process_0"
    msg = ckpts._failed(44, OSError(28, f"No space left on device: writing local file {tmp}"))
    assert msg.startswith(f"saving checkpoint 33 in {tmp_path / 'checkpoints'} failed")
    assert str(tmp) in msg and msg.endswith("no earlier checkpoint exists")
    assert ckpts._failed(7, OSError("disk full")).startswith("saving checkpoint 7 in ")
    ckpts.abandon()


def test_a_completed_summary_is_never_overwritten(tmp_path):
    writers.write_json(tmp_path / "summary.json", {"status": "completed", "test_accuracy": 0.9})
    rec = writers.RunRecorder(tmp_path, {"a": 1}, None)
    rec.finish({"status": "failed"})
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"


TINY_CLI = ("logger=none", "trainer.progress=false", "model.hidden=[32]", "T=6",
            "trainer.batch_size=64", "trainer.epochs=1")


@pytest.mark.slow
def test_rerunning_the_same_command_continues_its_unfinished_run(tmp_path):
    p = cli(*TINY_CLI, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    (first,) = (tmp_path / "outputs" / "runs").glob("*/*")
    summary = json.loads((first / "summary.json").read_text())
    writers.write_json(first / "summary.json", {**summary, "status": "preempted"})
    # a continued run that fails records it in its own directory (it went into Hydra's new
    # one, removed by then: the dead run kept "preempted" and was listed as running)
    (first / "metrics.jsonl").rename(tmp_path / "metrics.jsonl")
    (first / "metrics.jsonl").mkdir()  # unwritable
    p = cli(*TINY_CLI, cwd=tmp_path)
    assert p.returncode != 0 and f"continuing the unfinished run of the same command in {first}" \
        in p.stderr, p.stderr[-2000:]
    failed = json.loads((first / "summary.json").read_text())
    assert failed["status"] == "failed" and "metrics.jsonl" in failed["error"]
    (first / "metrics.jsonl").rmdir()
    (tmp_path / "metrics.jsonl").rename(first / "metrics.jsonl")
    p = cli(*TINY_CLI, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"continuing the unfinished run of the same command in {first}" in p.stderr
    assert list((tmp_path / "outputs" / "runs").glob("*/*")) == [first]  # no new directory
    assert json.loads((first / "summary.json").read_text())["status"] == "completed"
    p = cli(*TINY_CLI, "trainer.resume=never", cwd=tmp_path)  # a different command: new run
    assert p.returncode == 0 and "continuing" not in p.stderr
    assert len(list((tmp_path / "outputs" / "runs").glob("*/*"))) == 2


def test_run_directory_names(monkeypatch):
    safe = rundir.dirname("dataset.path=/data/x y.npz,seed=1")
    assert safe == "dataset.path=_data_x_y.npz,seed=1"
    long = rundir.dirname("a=" + "x" * 200)
    assert len(long) == rundir.MAX_NAME and "/" not in long
    assert long != rundir.dirname("a=" + "x" * 199)  # the hash keeps long names apart
    from snntrain.paths import suffix  # a run without overrides: no trailing "-"

    assert suffix("") == "" and suffix("seed=1") == "-seed=1"
    from snntrain.paths import CONFIG_DIR

    hydra_cfg = (CONFIG_DIR / "config.yaml").read_text()
    assert "${snntrain.stamp:}${snntrain.suffix:${hydra.job.override_dirname}}" in hydra_cfg
    assert "${hydra.job.num}${snntrain.suffix:${hydra.job.override_dirname}}" in hydra_cfg
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    assert rundir.stamp() == "slurm-4242"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert rundir.stamp() == "slurm-4200_3"


def test_a_second_sweep_in_a_slurm_jobs_sweep_directory_is_refused(tmp_path):
    """Two sweeps of one SLURM job share outputs/multirun/slurm-<job>: the second's report
    mixed in the first's runs and Hydra replaced its multirun.yaml. The same sweep again (a
    requeue) goes on; a hydra.sweep.dir given on the command line is the user's choice. A
    sweep refused at its start prints no report (it printed the other sweep's)."""
    from omegaconf import OmegaConf

    from snntrain.startup import another_sweep, record_sweep

    def config(task, hydra=()):
        return OmegaConf.create({"hydra": {"overrides": {"task": list(task),
                                                         "hydra": list(hydra)}}})

    sweep = tmp_path / "slurm-888"
    assert another_sweep(config(["seed=0,1"]), str(sweep)) is None  # nothing there yet
    sweep.mkdir()
    OmegaConf.save(config(["seed=0,1", "T=4"]), sweep / "multirun.yaml")
    assert another_sweep(config(["seed=0,1", "T=4"]), str(sweep)) is None  # a requeue
    assert another_sweep(config(["surrogate=arctan"]), str(sweep)) == (
        f"{sweep} holds another sweep (seed=0,1 T=4); this one would mix its runs into that "
        f"sweep's report: give it its own directory, e.g. hydra.sweep.dir={sweep}-2")
    for given in (f"hydra.sweep.dir={sweep}", f"++hydra.sweep.dir={sweep}"):
        assert another_sweep(config(["surrogate=arctan"], [given]), str(sweep)) is None
    # an Optuna sweep writes no multirun.yaml: the sweep's own record says what it was
    optuna = tmp_path / "slurm-999"
    record_sweep(config(["hparams_search=optuna"]), str(optuna))
    record_sweep(config(["hparams_search=optuna", "seed=5"]), str(optuna))  # (kept: the first)
    assert not (optuna / "multirun.yaml").exists()
    assert another_sweep(config(["hparams_search=optuna"]), str(optuna)) is None
    assert another_sweep(config(["hparams_search=optuna", "seed=5"]), str(optuna)).startswith(
        f"{optuna} holds another sweep (hparams_search=optuna); ")
    # the command: refused in one line, and no report (of the other sweep's runs) after it
    import subprocess
    import sys

    import _workers

    default = tmp_path / "outputs" / "multirun" / "slurm-888"
    default.parent.mkdir(parents=True)
    sweep.rename(default)
    p = subprocess.run([sys.executable, "-m", "snntrain", "-m", "surrogate=arctan", "seed=0,1",
                        "logger=none"], cwd=tmp_path, capture_output=True, text=True,
                       env={**_workers.env(1), "SLURM_JOB_ID": "888"}, timeout=300)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "snntrain: error: outputs/multirun/slurm-888 holds another sweep (seed=0,1 T=4); this "
        "one would mix its runs into that sweep's report: give it its own directory, e.g. "
        "hydra.sweep.dir=outputs/multirun/slurm-888-2"], p.stderr
    assert p.stdout == "" and sorted(f.name for f in default.iterdir()) == ["multirun.yaml"]
    assert not (default / ".snntrain_sweep.json").exists()  # (a sweep that starts writes it)


def test_offline_notice_only_for_auto_mode_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no ~/.netrc entry either
    pattern = "out/members/*/wandb/offline-run-*"
    assert writers.offline_notice({"mode": "auto"}, pattern) == (
        "wandb: no API key found, logging offline; upload later with "
        "`wandb sync out/members/*/wandb/offline-run-*`")
    assert writers.offline_notice({}, pattern) is not None  # auto is the default
    assert writers.offline_notice({"mode": "offline"}, pattern) is None  # asked for: no news
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password key\n")
    assert writers.offline_notice({"mode": "auto"}, pattern) is None
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert writers.offline_notice({"mode": "auto"}, pattern) is None


def test_out_of_memory_is_one_line_naming_what_to_shrink():
    """XLA's RESOURCE_EXHAUSTED (a 4M-neuron layer asked for 244 GiB) ended in a traceback."""
    import jax
    import jax.numpy as jnp

    from snntrain.lifecycle import out_of_memory

    try:  # a real allocation XLA refuses: 1 TiB
        jnp.zeros((2**38,), jnp.float32).block_until_ready()
    except jax.errors.JaxRuntimeError as e:
        err = out_of_memory(e)
    assert err is not None and "\n" not in str(err)
    assert str(err).startswith("out of memory on cpu (1,024.0 GiB in one buffer): make the model "
                               "(model.hidden, model.channels), trainer.batch_size or T smaller, "
                               "or set trainer.remat=true (RESOURCE_EXHAUSTED: Out of memory ")
    assert out_of_memory(ValueError("RESOURCE_EXHAUSTED")) is None
    assert out_of_memory(jax.errors.JaxRuntimeError("INTERNAL: something else")) is None


def test_wandb_without_a_server_logs_offline_for_a_later_sync(tmp_path, monkeypatch):
    """Online without a reachable server (no network) kept nothing for wandb: the run went on
    with local logs only. Now it retries offline, so ``wandb sync`` can upload it later."""
    import wandb

    modes, said = [], []

    def fake_init(**kw):
        modes.append(kw["mode"])
        if kw["mode"] == "online":
            raise wandb.errors.CommError("Failed to get resume status: context deadline exceeded")
        return object()

    monkeypatch.setattr(wandb, "init", fake_init)
    monkeypatch.setattr(wandb, "teardown", lambda: modes.append("teardown"))
    monkeypatch.setattr(writers.Wandb, "unreachable", False)
    monkeypatch.setattr(writers.Wandb, "open_runs", 0)
    w = writers.Wandb({"mode": "online"}, tmp_path, {}, "abc123", said.append)
    # wandb keeps the failed run's id until torn down ("run ID ... is in use")
    assert modes == ["online", "teardown", "offline"] and w.mode == "offline"
    assert w.run is not None and writers.Wandb.open_runs == 1
    assert said == [f"wandb: could not reach the server (CommError: Failed to get resume status: "
                    f"context deadline exceeded); logging offline instead, upload later with "
                    f"`wandb sync {tmp_path / 'wandb'}/offline-run-*`"]
    # the next run of the process (a population's next member) does not wait for the server
    modes.clear(), said.clear()
    writers.Wandb({"mode": "online"}, tmp_path / "m1", {}, "def456", said.append)
    assert modes == ["offline"] and said[0].startswith("wandb: the server did not answer "
                                                       "earlier in this process; logging offline")

    def broken(**kw):
        modes.append(kw["mode"])
        raise OSError("no space left")

    monkeypatch.setattr(wandb, "init", broken)
    modes.clear(), said.clear()
    w = writers.Wandb({"mode": "offline"}, tmp_path, {}, "abc123", said.append)
    assert modes == ["offline"] and w.run is None  # offline failed: no second try
    assert said == ["wandb: could not start (OSError: no space left); continuing with local "
                    "logs only"]


@pytest.mark.parametrize("delay", [0.5, pytest.param(2.0, marks=pytest.mark.slow)])
def test_ctrl_c_before_the_training_loop_is_one_line(tmp_path, delay):
    """Ctrl-C while Python imports JAX, Hydra composes or XLA compiles raised KeyboardInterrupt
    there: tracebacks, a half-imported JAX ('partially initialized module'), sometimes a crash
    at exit (status -11). Now one line and status 130, whatever the phase."""
    import time

    from _workers import popen

    proc = popen("logger=none", "trainer.progress=false", f"hydra.run.dir={tmp_path}")
    _wait_for_snntrains_handlers(proc.pid)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == ["snntrain: interrupted (Ctrl-C); checkpoints written "
                                        "before it are kept: rerun the command to resume"]


def _wait_for_snntrains_handlers(pid: int, timeout: float = 60.0) -> None:
    """Until ``snntrain.__main__.main`` has installed its handlers (SIGTERM caught: the kernel's
    ``SigCgt`` mask), so that a loaded machine's slow interpreter start (before them, Python's
    own KeyboardInterrupt and SIGTERM's default action) does not decide the test."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(ln.split()[1] for ln in status.splitlines()
                          if ln.startswith("SigCgt:")), 16)
        if caught >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.01)
    raise AssertionError("snntrain did not install its signal handlers")


def test_sigterm_before_the_training_loop_is_one_line(tmp_path):
    """SIGTERM (a SLURM pre-emption) while JAX imports or the data is binned ended the run with
    no word (status 143 from the default action)."""
    import time

    from _workers import popen

    proc = popen("logger=none", "trainer.progress=false", f"hydra.run.dir={tmp_path}")
    _wait_for_snntrains_handlers(proc.pid)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines() == ["snntrain: terminated (SIGTERM); checkpoints written "
                                        "before it are kept: rerun the command to resume"]


def test_an_unfinished_chunked_population_is_found_to_continue(tmp_path):
    """A chunked population keeps its checkpoints in checkpoints/group<g>/: the rerun of its
    command did not find it and started a new directory."""
    from omegaconf import OmegaConf

    config, overrides = {"seed": 0, "trainer": {"population": {"chunk": 1}}}, ["x=1"]
    for name, layout, args in (("a", "checkpoints/group1/11", overrides),
                               ("b", "checkpoints/22", ["x=2"]),  # another command
                               ("c", "checkpoints/group0", overrides)):  # c: no step saved
        d = tmp_path / "2026-12-05" / name
        (d / layout).mkdir(parents=True)
        (d / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(args), d / ".hydra" / "overrides.yaml")
        OmegaConf.save(OmegaConf.create(config), d / "config.yaml")
    assert [rundir.has_checkpoints(tmp_path / "2026-12-05" / n) for n in "abc"] == [
        True, True, False]
    found = rundir.find_unfinished(tmp_path, overrides, config, exclude=tmp_path / "new")
    assert found == tmp_path / "2026-12-05" / "a"


def test_a_failure_after_a_preemption_replaces_its_status(tmp_path, monkeypatch):
    """A pre-empted run that failed or diverged on its next attempt kept "preempted" in its
    summary.json (only a missing summary was written), so the report offered to resume it."""
    from types import SimpleNamespace

    from hydra.core.hydra_config import HydraConfig

    from snntrain.__main__ import _record_failure
    from snntrain.errors import ConfigError
    from snntrain.train import Diverged

    hc = SimpleNamespace(runtime=SimpleNamespace(output_dir=str(tmp_path)))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hc))
    path = tmp_path / "summary.json"

    def status_after(old: dict | None, e: BaseException) -> dict:
        path.unlink(missing_ok=True)
        if old is not None:
            path.write_text(json.dumps(old))
        _record_failure(e)
        return json.loads(path.read_text())

    assert status_after({"status": "preempted", "steps": 111}, Diverged("NaN at step 113")) == {
        "status": "diverged", "error": "Diverged: NaN at step 113"}
    # the step, as a population's diverged member records it (a solo run's record had none)
    assert status_after(None, Diverged("NaN at step 7", step=7)) == {
        "status": "diverged", "error": "Diverged: NaN at step 7", "diverged_at_step": 7,
        "steps": 7}
    assert status_after({"status": "preempted"}, RuntimeError("boom"))["status"] == "failed"
    # a resume refused at run time (a batch that no longer divides over the devices) left a
    # two-key record of a pre-empted run: its partial results stay beside the failure
    assert status_after({"status": "preempted", "epochs": 3, "best_val_accuracy": 0.9},
                        ConfigError("trainer.batch_size=128 does not divide")) == {
        "status": "failed", "error": "ConfigError: trainer.batch_size=128 does not divide",
        "epochs": 3, "best_val_accuracy": 0.9, "earlier_status": "preempted"}
    assert status_after({"status": "failed", "error": "old"}, RuntimeError("new"))["error"] == (
        "RuntimeError: new")
    completed = {"status": "completed", "steps": 22}
    assert status_after(completed, RuntimeError("later")) == completed
    # a finished run that trained on (metrics.jsonl to step 33) and then failed
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"split": "train", "step": 33}) + "\n")
    assert status_after(completed, RuntimeError("later")) == {
        "status": "failed", "error": "RuntimeError: later"}
    population = {"status": "diverged", "population": 2, "members": []}
    assert status_after(population, Diverged("every member")) == population


def test_wandb_keeps_a_train_record_and_the_epoch_record_of_one_step_and_the_summary(tmp_path):
    """wandb merges what is logged at one step: a train record and the epoch record of the
    same step (digits: steps 110, 220, ...) kept only the epoch's "split"; and the last row,
    committed at finish, overwrote the summary (samples_per_s, plus split and epoch)."""
    from _wandb import finished_wandb_file, read_wandb_run, wandb_records

    rec = writers.RunRecorder(tmp_path, {"seed": 0}, {"mode": "offline", "project": "t",
                                                      "name": "wandb"})
    rec.log({"split": "train", "step": 10, "epoch": 1, "loss": 2.0, "accuracy": 0.5})
    rec.log({"split": "epoch", "step": 10, "epoch": 1, "val_accuracy": 0.6,
             "samples_per_s": 100.0})
    rec.log({"split": "train", "step": 20, "epoch": 2, "loss": 1.0, "accuracy": 0.7})
    rec.log({"split": "epoch", "step": 20, "epoch": 2, "val_accuracy": 0.8,
             "samples_per_s": 90.0})
    rec.finish({"status": "completed", "samples_per_s": 123.0, "epochs": 2,
                "cost": {"synops": 5.0}})
    run_file = finished_wandb_file(tmp_path)
    rows = [{k: json.loads(i.value_json) for i in r.history.item
             if not (k := i.key or "/".join(i.nested_key)).startswith("_")}
            for r in wandb_records(run_file) if r.WhichOneof("record_type") == "history"]
    assert rows == [{"epoch": 1, "loss": 2.0, "accuracy": 0.5, "val_accuracy": 0.6,
                     "samples_per_s": 100.0},
                    {"epoch": 2, "loss": 1.0, "accuracy": 0.7, "val_accuracy": 0.8,
                     "samples_per_s": 90.0}]
    summary = read_wandb_run(run_file)["summary"]
    assert summary["samples_per_s"] == 123.0 and summary["epochs"] == 2
    assert summary["cost"] == {"synops": 5.0} and "split" not in summary


@pytest.mark.slow
def test_a_backend_this_machine_lacks_is_one_line(tmp_path):
    """JAX_PLATFORMS=cuda on a machine without a GPU ended in a traceback with a bare
    AssertionError (gpu, tpu: JAX's RuntimeError), recorded as the run's error."""
    import subprocess
    import sys

    import _workers

    for platform, why in (("cuda", "no such backend here"),
                          ("tpu", "Unable to initialize backend 'tpu'")):
        p = subprocess.run([sys.executable, "-m", "snntrain", "logger=none", "T=4",
                            "trainer.epochs=1"], cwd=tmp_path, capture_output=True, text=True,
                           env={**_workers.env(1), "JAX_PLATFORMS": platform}, timeout=300)
        line = p.stderr.strip().splitlines()[-1]
        assert p.returncode == 2 and line.startswith(
            f"snntrain: error: JAX_PLATFORMS='{platform}': JAX cannot start it on this machine "
            f"({why}") and line.endswith(
            "pip install 'snntrain[gpu]' (TPU: 'snntrain[tpu]'), or unset JAX_PLATFORMS to run "
            "on the CPU"), p.stderr[-2000:]
        assert "Traceback" not in p.stderr and not (tmp_path / "outputs").exists()


def test_a_multi_host_start_without_its_processes_is_one_line(tmp_path):
    """trainer.distributed=auto in a SLURM allocation of 2 tasks started without srun: a
    traceback of snntrain's own ParallelError (documented as one line)."""
    import subprocess
    import sys

    import _workers

    p = subprocess.run([sys.executable, "-m", "snntrain", "logger=none", "T=4",
                        "trainer.epochs=1", "trainer.distributed=auto"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300,
                       env={**_workers.env(1), "SLURM_JOB_ID": "5", "SLURM_NTASKS": "2"})
    line = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert line.startswith("snntrain: error: trainer.distributed=auto: "
                           "jax.distributed.initialize({}) failed: ")
    assert line.endswith("start one process per task (under SLURM: srun), or set "
                         "trainer.coordinator_address, trainer.num_processes and "
                         "trainer.process_id, or trainer.distributed=false for one process")


def test_a_first_step_that_is_not_finite_does_not_blame_the_learning_rate():
    """At step 1 the loss and gradient are the initial parameters': "Lower optimizer.lr" sent
    a user of loss.rate_reg.weight=1e30 after the wrong key (tester)."""
    from snntrain.runstate import Diverged, DivergencePolicy

    policy = DivergencePolicy("stop")
    with pytest.raises(Diverged) as e:
        policy.accept(1, {"finite": False, "loss": 2.5, "grad_norm": float("inf")})
    assert str(e.value) == (
        "loss or gradient is NaN/Inf at step 1, before any update (loss=2.5, grad_norm=inf): "
        "the initial network's, not the learning rate's; check the values that scale the loss "
        "or the network (loss.rate_reg.weight, model.readout_scale, the neuron's parameters) "
        "and the input")
    with pytest.raises(Diverged, match=r"at step 2 .*Lower optimizer.lr"):
        policy.accept(2, {"finite": False, "loss": float("nan"), "grad_norm": float("nan")})
    assert DivergencePolicy("skip_step", say=lambda _: None).accept(
        1, {"finite": False, "loss": 1.0, "grad_norm": 1.0}) is False


def test_a_step_too_large_for_the_memory_left_is_refused_before_it_runs(tmp_path, monkeypatch):
    """model.hidden=[1000000] was killed by the kernel (status 137: no message, no summary);
    the compiled step's working memory is compared with what is left (90% of it) first, and
    a T whose time loop alone cannot fit is refused at start-up (it was killed while the model
    was built)."""
    import json

    from conftest import compose

    from snntrain import parallel, startup, train
    from snntrain.runstate import TrainingError

    monkeypatch.setattr(parallel, "available_memory", lambda: 2**10)  # 1 KiB left
    with pytest.raises(TrainingError) as e:
        train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    assert re.fullmatch(r"out of memory on cpu: the compiled training step needs [\d.,]+ GiB of "
                        r"working memory, 0\.0 GiB is left \(a run plans with 90% of it\): make "
                        r"the model \(model.hidden, model.channels\), trainer.batch_size or T "
                        r"smaller, or set trainer.remat=true", str(e.value)), str(e.value)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"
    assert not (tmp_path / "metrics.jsonl").exists() or "loss" not in (
        tmp_path / "metrics.jsonl").read_text()
    monkeypatch.setattr(parallel, "available_memory", lambda: 2**40)  # 1 TiB: trains
    assert train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path / "b")["status"] \
        == "completed"
    # the start-up's lower bound: T x B x the first layer's width, float32
    monkeypatch.setattr(parallel, "available_memory", lambda: 2**30)
    cfg = compose("T=100000", "trainer.batch_size=128", tiny=False)  # 100000*128*256*4: 12 GiB
    assert startup._time_loop_memory_error(cfg, 128) == (
        "out of memory: T=100000 time steps of trainer.batch_size=128 examples x 256 neurons "
        "need at least 12.2 GiB, 1.0 GiB is left: make T, trainer.batch_size or the model "
        "smaller, or set trainer.remat=true")
    assert startup._time_loop_memory_error(compose("T=25", tiny=False), 128) is None
    # under remat one block of model.remat_chunk steps (it refused T=100000 that needs 1.5 GiB)
    assert startup._time_loop_memory_error(compose("T=100000", "trainer.remat=true",
                                                   tiny=False), 128) is None


def test_a_lock_whose_writer_has_ended_says_its_workers_are_finishing(tmp_path):
    """A population's worker processes inherit their parent's lock and go on saving for a few
    seconds after the parent was killed (kill -9): the rerun said the directory was in use by
    the dead parent, "wait for it to end (or stop it)" (robustness tester)."""
    import fcntl
    import os
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    for pid, said in ((dead, "(that process has ended; they are finishing its checkpoints"),
                      (str(os.getpid()), "; wait for it to end (or stop it), or choose")):
        fd = os.open(tmp_path / rundir.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # (the workers' inherited descriptor)
        os.ftruncate(fd, 0)
        os.write(fd, f"process {pid} on {socket.gethostname()} since 2026-12-08 01:18:51\n"
                 .encode())
        with pytest.raises(rundir.RunDirBusy) as e, rundir.RunLock(tmp_path):
            pass
        os.close(fd)
        assert said in str(e.value), str(e.value)
        assert str(e.value).endswith("or choose another hydra.run.dir")
