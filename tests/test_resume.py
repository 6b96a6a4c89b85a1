"""Never lose a run: exact resume after SIGKILL, SIGTERM checkpoints, NaN, bad checkpoints."""

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _workers import cli, popen
from conftest import compose

from snntrain import experiment, train
from snntrain.checkpoint import CheckpointError, Checkpoints, IncompatibleCheckpoint, state_digest
from snntrain.errors import Refused
from snntrain.train import params_of

# Long enough (~40 steps/epoch) to be killed mid-epoch; small enough to run in seconds.
RUN = ("logger=none", "trainer.progress=false", "trainer.epochs=4", "trainer.batch_size=32",
       "model.hidden=[128]", "T=10", "trainer.checkpoint_every=7", "trainer.log_every=1")
TIMING = ("samples_per_s",)
# The CLI equivalent of conftest.TINY (what compose() uses by default).
TINY_CLI = ("logger=none", "trainer.progress=false", "model.hidden=[32]", "T=6",
            "trainer.batch_size=64")


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def _assert_same_params(a: Path, b: Path) -> None:
    for x, y in zip(jax.tree.leaves(params_of(a)), jax.tree.leaves(params_of(b)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _wait_for_step(run_dir: Path, step: int, proc, timeout: float = 120) -> None:
    t0 = time.time()
    path = run_dir / "metrics.jsonl"
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()[-3000:]}")
        if path.exists():
            lines = path.read_text().splitlines()
            if lines and json.loads(lines[-1] if lines[-1].endswith("}") else lines[-2]
                                    ).get("step", 0) >= step:
                return
        time.sleep(0.02)
    raise AssertionError("run did not reach the step in time")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    p = cli(*RUN, f"hydra.run.dir={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    return out


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path, uninterrupted):
    proc = popen(*RUN, f"hydra.run.dir={tmp_path}")
    _wait_for_step(tmp_path, 60, proc)  # mid-epoch 2, past a few checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "summary.json").exists()
    p = cli(*RUN, f"hydra.run.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming from step" in p.stderr
    _assert_same_params(uninterrupted, tmp_path)
    assert _records(tmp_path) == _records(uninterrupted)
    a = json.loads((uninterrupted / "summary.json").read_text())
    b = json.loads((tmp_path / "summary.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_loss", "best_val_accuracy", "steps"):
        assert a[key] == b[key]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resumes(tmp_path, uninterrupted):
    run = [r for r in RUN if not r.startswith("trainer.checkpoint_every")]
    proc = popen(*run, "trainer.checkpoint_every=0", f"hydra.run.dir={tmp_path}")
    _wait_for_step(tmp_path, 50, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == train.PREEMPTED_EXIT_CODE, err[-3000:]
    assert "saved a checkpoint at step" in err
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    last_logged = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert steps[-1] == last_logged and steps[-1] % 41 != 0  # mid-epoch, the step it stopped
    p = cli(*run, "trainer.checkpoint_every=0", f"hydra.run.dir={tmp_path}")
    assert p.returncode == 0, p.stderr[-3000:]
    _assert_same_params(uninterrupted, tmp_path)


def test_truncated_checkpoint_falls_back_to_previous(tmp_path):
    cfg = compose("trainer.epochs=2", "trainer.keep_checkpoints=3")
    train.train_and_evaluate(cfg, tmp_path)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert len(steps) == 2
    newest = tmp_path / "checkpoints" / str(steps[-1])
    for f in newest.rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "meta" not in f.parts:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    messages = []
    from snntrain.checkpoint import Checkpoints

    exp = train.build(cfg)
    state, meta = Checkpoints(tmp_path / "checkpoints").restore(
        exp.init_state(), train.fingerprint(exp), messages.append)
    assert meta["step"] == steps[0]
    assert any("corrupt or truncated" in m for m in messages), messages
    # kept, but out of the way: the run saves that step again in full
    aside = [p.name for p in (tmp_path / "checkpoints").iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1 and aside[0].startswith(f"{steps[-1]}.unreadable-")
    assert f"set aside as {aside[0]}" in messages[0]
    assert messages[1:] == [f"using checkpoint {tmp_path / 'checkpoints' / str(steps[0])}, the "
                            f"newest readable one (not step {steps[-1]})"]
    assert Checkpoints(tmp_path / "checkpoints").steps() == steps[:1]


def test_a_checkpoint_with_damaged_bytes_falls_back_to_the_previous(tmp_path):
    """Bytes damaged inside a checkpoint's array data (its size intact) could be restored without
    a word: the run then "diverged" at once, blaming the learning rate and calling the damaged
    checkpoint its last good one. Each checkpoint's meta holds a digest of its arrays now."""
    cfg = compose("trainer.epochs=2", "trainer.keep_checkpoints=3")
    train.train_and_evaluate(cfg, tmp_path)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    newest = tmp_path / "checkpoints" / str(steps[-1])
    messages = []

    # readable, well-formed arrays that are not the ones saved with this meta (bytes damaged
    # inside a compressed chunk that still decompresses read as such): the previous step's
    shutil.rmtree(newest / "state")
    shutil.copytree(tmp_path / "checkpoints" / str(steps[0]) / "state", newest / "state")
    exp = train.build(cfg)
    state, meta = Checkpoints(tmp_path / "checkpoints").restore(
        exp.init_state(), train.fingerprint(exp), messages.append)
    assert meta["step"] == steps[0]
    assert state_digest(state, by_path=True) == meta["state_digest_by_path"]
    assert messages[0].startswith(f"checkpoint {newest} is corrupt (its arrays differ from the "
                                  "digest saved with them); set aside as "), messages


def test_a_corrupt_newest_meta_is_saved_again_and_the_run_goes_on(tmp_path):
    """A corrupt meta/metadata in the newest checkpoint: the rerun fell back to the one before,
    then failed at that step on every rerun ("saving checkpoint 11 ... failed
    (JSONDecodeError)"); a corrupt state was never saved again (a completed run without its
    final parameters on disk)."""
    cfg = ("trainer.checkpoint_every=4", "trainer.keep_checkpoints=10")
    train.train_and_evaluate(compose(*cfg, "trainer.epochs=1"), tmp_path / "a")
    newest = Checkpoints(tmp_path / "a" / "checkpoints").steps()[-1]
    (tmp_path / "a" / "checkpoints" / str(newest) / "meta" / "metadata").write_text("{not json")
    summary = train.train_and_evaluate(compose(*cfg, "trainer.epochs=2"), tmp_path / "a")
    train.train_and_evaluate(compose(*cfg, "trainer.epochs=2"), tmp_path / "b")
    assert summary["status"] == "completed"
    assert newest in Checkpoints(tmp_path / "a" / "checkpoints").steps()
    _assert_same_params(tmp_path / "b", tmp_path / "a")


@pytest.mark.slow
def test_nan_stops_with_message_and_keeps_good_checkpoint(tmp_path):
    """A good epoch, then the same run resumed with an absurd lr (1e38: one Adam update puts
    the parameters near float32's limit, so the next step's currents overflow; 1e30 could
    leave a finite, useless run): it stops at the first bad step, names the good checkpoint,
    and leaves it as it was."""
    train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    good = params_of(tmp_path)
    p = cli(*TINY_CLI, "trainer.epochs=3", "optimizer.lr=1e38", f"hydra.run.dir={tmp_path}")
    assert p.returncode == train.DIVERGED_EXIT_CODE, p.stderr[-2000:]
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("snntrain: diverged: loss or gradient became NaN/Inf at step 2")
    assert f"last good checkpoint: {tmp_path / 'checkpoints' / '21'}" in line
    steps = sorted(int(d.name) for d in (tmp_path / "checkpoints").iterdir() if d.name.isdigit())
    assert steps == [21]
    for a, b in zip(jax.tree.leaves(good), jax.tree.leaves(params_of(tmp_path)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_incompatible_checkpoint_is_reported(tmp_path):
    """... and refused without a trace: the pre-empted run's summary.json (the old code wrote
    "failed" over it) and Hydra's .hydra/ files (rewritten before the attempt) stay as they were."""
    train.train_and_evaluate(compose(), tmp_path)
    (tmp_path / "summary.json").write_text('{"status": "preempted"}')
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- the first attempt's\n")
    p = cli(*TINY_CLI, "trainer.epochs=1", "model.hidden=[48]", f"hydra.run.dir={tmp_path}")
    assert p.returncode == 2
    line = p.stderr.strip().splitlines()[-1]
    assert "incompatible run: model.hidden: checkpoint has [32], this run has [48]" in line
    assert (tmp_path / "summary.json").read_text() == '{"status": "preempted"}'
    assert [p.name for p in (tmp_path / ".hydra").iterdir()] == ["overrides.yaml"]
    assert (tmp_path / ".hydra" / "overrides.yaml").read_text() == "- the first attempt's\n"


def test_unwritable_output_dir(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    p = cli("logger=none", "trainer.epochs=1", f"hydra.run.dir={blocked}/run")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr.splitlines()[-1]
    assert str(blocked) in p.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_readonly_output_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    p = cli("logger=none", "trainer.epochs=1", f"hydra.run.dir={ro}/run")
    assert p.returncode != 0 and "not writable" in p.stderr


def test_disk_full_during_save_is_one_line_and_keeps_previous(tmp_path, monkeypatch):
    """A save that fails (here: ENOSPC injected into orbax) names the intact checkpoint."""
    import errno

    import orbax.checkpoint as ocp


    cfg = compose("trainer.epochs=2", "trainer.async_checkpointing=false")
    calls = {"n": 0}
    real_save = ocp.CheckpointManager.save

    def failing_save(self, step, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", failing_save)
    with pytest.raises(CheckpointError) as info:
        train.train_and_evaluate(cfg, tmp_path)
    msg = str(info.value)
    assert "No space left on device" in msg and "is intact" in msg and "\n" not in msg
    monkeypatch.undo()
    exp = train.build(cfg)
    state, meta = Checkpoints(tmp_path / "checkpoints").restore(exp.init_state(),
                                                                train.fingerprint(exp))
    assert meta["epoch"] == 1


def test_checkpoint_meta_is_saved_as_of_the_call_not_as_mutated_afterwards(tmp_path):
    """The save is asynchronous and the trainer keeps adding to its running epoch sums: the
    checkpoint must hold the sums of its own step (a SIGKILL-resume once logged epoch means
    that mixed in later steps)."""
    from snntrain.checkpoint import Checkpoints

    ckpts = Checkpoints(tmp_path / "checkpoints")
    meta = {"step": 1, "epoch_acc": {"loss": 1.5, "count": 64.0}}
    ckpts.save(1, {"w": np.arange(3.0)}, meta)
    meta["epoch_acc"]["loss"] += 100.0
    meta["epoch_acc"]["count"] = 128.0
    ckpts.wait()
    assert ckpts.read_meta(1)["epoch_acc"] == {"loss": 1.5, "count": 64.0}


def _files(run_dir: Path) -> dict[str, bytes]:
    return {f: (run_dir / f).read_bytes() for f in ("config.yaml", "summary.json", "metrics.jsonl")}


def test_a_refused_resume_names_what_changed_and_leaves_the_run_as_it_was(tmp_path):
    """A run directory holds one configuration's training: resuming it with another surrogate,
    T, neuron or encoder is refused in one line naming the key, and the run's config.yaml,
    summary.json and metrics.jsonl stay byte for byte (before, the attempt rewrote config.yaml
    first, and a resume with another surrogate went on silently under the new name)."""

    train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    before = _files(tmp_path)
    for override, named in (
            ("surrogate=arctan", "surrogate: checkpoint has FastSigmoid(alpha=25.0), this run "
                                 "has Arctan(alpha=1.0)"),
            ("T=7", "T: checkpoint has 6, this run has 7"),
            ("model.neuron.beta=0.8", "model.neuron.beta: checkpoint has 0.9, this run has 0.8"),
            ("encoder.gain=0.5", "encoder.gain: checkpoint has 1.0, this run has 0.5"),
            # the optimizer state's shape: read as a corrupt checkpoint, restarted from step 0
            ("optimizer.grad_clip=1.0", "optimizer.grad_clip: checkpoint has null, this run "
                                        "has set"),
            ("optimizer.schedule=cosine", "optimizer.schedule: checkpoint has constant, this "
                                          "run has cosine"),
            ("optimizer=sgd", "optimizer.name: checkpoint has adam, this run has sgd"),
            # the data's splits (another train set went on from the checkpoint)
            ("dataset.val_fraction=0.2", "dataset.val_fraction: checkpoint has 0.1, "
                                         "this run has 0.2"),
            # what the model computes (it went on as spike_count without a word)
            ("model.readout=spike_count", "model.readout: checkpoint has membrane_mean, this "
                                          "run has spike_count"),
            # what the training minimises, how it steps, in which dtype (went on silently, and
            # config.yaml then described the whole run with the new values)
            ("loss.rate_reg.weight=5", "loss.rate_reg.weight: checkpoint has 0.0, this run "
                                       "has 5.0"),
            ("+optimizer.b1=0.5", "optimizer.b1: checkpoint has <missing>, this run has 0.5"),
            ("optimizer.grad_clip=null", "no difference"),  # (the same: a control)
            ("trainer.dtype=bfloat16", "trainer.dtype: checkpoint has float32, this run has "
                                       "bfloat16")):
        if named == "no difference":
            continue
        with pytest.raises(CheckpointError, match="incompatible run") as e:
            train.train_and_evaluate(compose("trainer.epochs=2", override), tmp_path)
        assert named in str(e.value)
        assert _files(tmp_path) == before, override
    # how it is computed may change (as for a population)
    more = train.train_and_evaluate(compose("trainer.epochs=2", "model.remat_chunk=3"), tmp_path)
    assert more["epochs"] == 2


def test_more_epochs_under_a_cosine_schedule_are_refused(tmp_path):
    """A cosine schedule decays over the whole run: resuming a 1-epoch cosine run with
    trainer.epochs=2 trained epoch 2 on a schedule that restarts half-way (a different training
    from a 2-epoch run, presented as one). It is refused, naming the schedule's length; the same
    length still resumes (here: nothing to train)."""

    cosine = ("optimizer.schedule=cosine",)
    first = train.train_and_evaluate(compose(*cosine, "trainer.epochs=1"), tmp_path)
    before = _files(tmp_path)
    with pytest.raises(CheckpointError, match="incompatible run") as e:
        train.train_and_evaluate(compose(*cosine, "trainer.epochs=2"), tmp_path)
    spe = first["steps"]
    assert (f"optimizer.schedule length (trainer.epochs x steps per epoch): checkpoint has "
            f"{spe}, this run has {2 * spe}") in str(e.value)
    assert _files(tmp_path) == before
    again = train.train_and_evaluate(compose(*cosine, "trainer.epochs=1"), tmp_path)
    assert again["test_accuracy"] == first["test_accuracy"] and _files(tmp_path) == before


def test_a_finished_run_run_again_trains_nothing_and_keeps_its_record(tmp_path, capsys):
    """The same command again on a finished run says there is nothing to train and returns
    its summary with every file untouched (before, it rewrote summary.json with a training
    time of 0 and 0 samples/s); more epochs resume it; fewer are refused, naming
    trainer.epochs."""
    first = train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    before = _files(tmp_path)
    capsys.readouterr()
    again = train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    assert "nothing to train" in capsys.readouterr().err
    assert again == json.loads(before["summary.json"]) and again["steps"] == first["steps"]
    assert _files(tmp_path) == before
    # another value that a resume would accept: said, not applied (it said "nothing to
    # train" only; tester)
    train.train_and_evaluate(compose("trainer.epochs=1", "optimizer.lr=0.01"), tmp_path)
    assert ("this command's optimizer.lr=0.01 did not apply: the run had finished (its "
            "config.yaml stays)") in capsys.readouterr().err
    assert _files(tmp_path) == before
    # a copy of the directory, run again: its summary names the copy (the report of the
    # finished run went to the original's directory)
    copy = tmp_path.with_name(f"{tmp_path.name}-copy")
    shutil.copytree(tmp_path, copy)
    assert train.train_and_evaluate(compose("trainer.epochs=1"), copy)["run_dir"] == str(copy)
    # its metrics.jsonl deleted by hand, then trained on: said, not silent
    (copy / "metrics.jsonl").unlink()
    capsys.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=2"), copy)
    assert (f"{copy / 'metrics.jsonl'} is missing: the records it held are lost; training goes "
            "on from the checkpoint") in capsys.readouterr().err
    # damaged by hand (cut inside its first line): said too (it was dropped without a word)
    (copy / "metrics.jsonl").write_bytes((copy / "metrics.jsonl").read_bytes()[:150])
    train.train_and_evaluate(compose("trainer.epochs=3"), copy)
    assert (f"{copy / 'metrics.jsonl'} holds 0 of the 2 epoch records up to step "
            f"{2 * first['steps']}: the missing ones are lost") in capsys.readouterr().err
    more = train.train_and_evaluate(compose("trainer.epochs=2"), tmp_path)
    assert more["epochs"] == 2 and more["steps"] == 2 * first["steps"]
    with pytest.raises(train.ConfigError, match=r"trainer.epochs=1, but the checkpoint in .* "
                       r"has trained 2 epochs \(step \d+\); to train 1, use a new run "
                       "directory or trainer.resume=never") as e:
        train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    # a refusal: the CLI leaves summary.json and .hydra/ as they were (it wrote "failed")
    assert isinstance(e.value, Refused)


def test_checkpoints_older_than_a_fingerprint_key_still_resume(tmp_path):
    """Keys added to the fingerprint later (surrogate, T, neuron, encoder) are not compared
    when a checkpoint lacks them; when present they are."""
    from snntrain.checkpoint import (
        DATA_HASHES,
        DATA_IDENTITY,
        FINGERPRINT_ADDED_LATER,
        CheckpointError,
    )

    exp = train.build(compose())
    fp = train.fingerprint(exp)
    assert set(fp) >= FINGERPRINT_ADDED_LATER
    old = {k: v for k, v in fp.items() if k not in FINGERPRINT_ADDED_LATER}
    ckpts = Checkpoints(tmp_path, async_save=False)
    ckpts.save(5, exp.init_state(), {"step": 5, "fingerprint": old})
    ckpts.close()
    _, meta = Checkpoints(tmp_path, write=False).restore(exp.init_state(), fp)
    assert meta["step"] == 5
    ckpts = Checkpoints(tmp_path, async_save=False)
    ckpts.save(6, exp.init_state(), {"step": 6, "fingerprint": {**old, "T": 99}})
    ckpts.close()
    with pytest.raises(CheckpointError, match="T: checkpoint has 99, this run has 6"):
        Checkpoints(tmp_path, write=False).restore(exp.init_state(), fp)
    # a data hash only an in-memory source has: dataset.in_memory=false (a streamed split, no
    # hash) resumes a checkpoint that has one (it was refused: "this run has <missing>")
    ckpts = Checkpoints(tmp_path, async_save=False)
    ckpts.save(7, exp.init_state(), {"step": 7, "fingerprint": fp})
    ckpts.close()
    streamed = {k: v for k, v in fp.items() if k not in DATA_HASHES}
    assert len(streamed) == len(fp) - 2
    _, meta = Checkpoints(tmp_path, write=False).restore(exp.init_state(), streamed)
    assert meta["step"] == 7
    with pytest.raises(CheckpointError, match=r"training data \(a hash of its examples and "
                                              r"labels\): checkpoint has [0-9a-f]{16}, this run "
                                              "has 0123"):
        Checkpoints(tmp_path, write=False).restore(
            exp.init_state(), {**fp, DATA_IDENTITY: "0123"})


def test_resume_never_sets_the_earlier_training_aside(tmp_path, capsys):
    """trainer.resume=never on a used directory left the old checkpoints beside the new ones
    (a later rerun then found the old run's last step and said "nothing to train" for epochs
    never trained) and overwrote metrics.jsonl and summary.json without a word."""
    train.train_and_evaluate(compose("trainer.epochs=2"), tmp_path)
    old = _files(tmp_path)
    (tmp_path / "wandb" / "offline-run-old").mkdir(parents=True)  # as logger=wandb leaves it
    capsys.readouterr()
    fresh = train.train_and_evaluate(compose("trainer.epochs=1", "optimizer.lr=0.01",
                                             "trainer.resume=never"), tmp_path)
    err = capsys.readouterr().err
    assert "trainer.resume=never: starting from step 0; kept the earlier files as checkpoints." \
        "set-aside-" in err
    kept = {p.name.split(".set-aside-")[0]: p for p in tmp_path.iterdir()
            if ".set-aside-" in p.name}
    # (and its config.yaml, which the new run's replaced: the records kept had no config)
    assert set(kept) == {"checkpoints", "metrics.jsonl", "summary.json", "wandb", "config.yaml"}
    assert (kept["wandb"] / "offline-run-old").is_dir()
    for name in ("summary.json", "metrics.jsonl", "config.yaml"):
        assert kept[name].read_bytes() == old[name], name
    assert "lr: 0.01" in (tmp_path / "config.yaml").read_text()
    steps = train.ckpt_lib.Checkpoints(tmp_path / "checkpoints", write=False).steps()
    assert steps == [fresh["steps"]]  # only the new run's
    more = train.train_and_evaluate(compose("trainer.epochs=2", "optimizer.lr=0.01"), tmp_path)
    assert more["epochs"] == 2 and more["steps"] == 2 * fresh["steps"]  # trains on: epoch 2


def test_skipped_steps_are_counted_and_survive_a_resume(tmp_path, capsys):
    """trainer.on_nan=skip_step skipped 21 of 22 steps and reported "completed" with no
    count anywhere; the count is now in the epoch records and summary.json, and a resumed run
    carries it on."""
    over = ("optimizer=sgd", "optimizer.lr=1e38", "trainer.on_nan=skip_step")
    one = train.train_and_evaluate(compose("trainer.epochs=1", *over), tmp_path)
    err = capsys.readouterr().err
    n = err.count("non-finite loss/gradient, update skipped")
    assert 0 < n <= one["steps"] and one["skipped_steps"] == n
    assert f"{n} of {one['steps']} steps were skipped" in err
    epochs = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
              if r["split"] == "epoch"]
    assert epochs[-1]["skipped_steps"] == n
    two = train.train_and_evaluate(compose("trainer.epochs=2", *over), tmp_path)  # resumes
    assert two["skipped_steps"] == n + capsys.readouterr().err.count("update skipped")
    assert "skipped_steps" not in train.train_and_evaluate(compose("trainer.epochs=1"),
                                                           tmp_path / "clean")


def test_resume_from_a_directory_without_checkpoints_is_refused_before_the_run_dir(tmp_path):
    """trainer.resume=<a directory holding no checkpoint> made the run directory (.hydra/, a
    failed summary.json) before saying so; its own run directory, empty, is allowed."""
    from snntrain.startup import resume_error

    empty = tmp_path / "empty"
    (empty / "checkpoints" / "notes").mkdir(parents=True)
    assert resume_error(str(empty), str(tmp_path / "run")) == (
        f"trainer.resume={empty}: no checkpoint in {empty / 'checkpoints'} (auto, never or a "
        "directory holding a run's checkpoints)")
    assert resume_error(str(empty), str(empty)) is None  # (its own directory)
    assert resume_error("auto", None) is None
    (empty / "checkpoints" / "12").mkdir()
    assert resume_error(str(empty), str(tmp_path / "run")) is None
    other = tmp_path / "other"
    other.mkdir()
    p = cli("logger=none", f"trainer.resume={other}", f"hydra.run.dir={tmp_path / 'run'}",
            cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"snntrain: error: trainer.resume={other}: no checkpoint in {other} (auto, never or a "
        "directory holding a run's checkpoints)")
    assert not (tmp_path / "run").exists()


def test_one_checkpoint_step_as_the_resume_path_asks_for_its_run(tmp_path):
    """trainer.resume=<run>/checkpoints/<step> said "no checkpoint in .../<step>": a run
    resumes from its newest readable checkpoint, so the run directory is asked for (at
    start-up, and by the library)."""
    from snntrain.startup import resume_error

    train.train_and_evaluate(compose(), tmp_path / "a")
    step = tmp_path / "a" / "checkpoints" / str(Checkpoints(tmp_path / "a" / "checkpoints")
                                                 .steps()[-1])
    want = (f"trainer.resume={step}: {step} is one checkpoint step of {step.parent}; give the "
            "run directory or its checkpoints/ directory (a run resumes from its newest "
            "readable checkpoint)")
    assert resume_error(str(step), str(tmp_path / "b")) == want
    with pytest.raises(train.ConfigError) as e:
        train.train_and_evaluate(compose("trainer.epochs=2", f"trainer.resume={step}"),
                                 tmp_path / "b")
    assert str(e.value) == want
    assert resume_error(str(step.parent), str(tmp_path / "b")) is None  # (its checkpoints)


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_resume_from_another_runs_directory(tmp_path, capsys):
    """trainer.resume=<run dir> (not <run dir>/checkpoints) said "no readable checkpoint
    there" and left a failed run; a run directory is read through its checkpoints/."""
    first = train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path / "a")
    capsys.readouterr()
    on = train.train_and_evaluate(compose("trainer.epochs=2", f"trainer.resume={tmp_path / 'a'}"),
                                  tmp_path / "b")
    assert (f"resuming from step {first['steps']} (epoch 2, batch 0 of {first['steps']}) in "
            f"{tmp_path / 'a' / 'checkpoints'}") in capsys.readouterr().err
    straight = train.train_and_evaluate(compose("trainer.epochs=2"), tmp_path / "c")
    assert on["steps"] == straight["steps"] and on["test_accuracy"] == straight["test_accuracy"]
    # the other run's time stays its own (it was counted in both directories)
    assert on["compile_time_s"] < first["compile_time_s"] + on["wall_time_s"] / 2
    step = Checkpoints(tmp_path / "b" / "checkpoints").steps()[-1]
    history = json.loads((tmp_path / "b" / "checkpoints" / str(step) / "meta" / "metadata"
                          ).read_text())["history"]
    assert history["timed_steps"] == first["steps"] - 1  # this run's epoch only
    # another config from that run's checkpoint: the hint was "use trainer.resume=never"
    with pytest.raises(CheckpointError) as e:
        train.train_and_evaluate(compose("trainer.epochs=2", "T=7",
                                         f"trainer.resume={tmp_path / 'a'}"), tmp_path / "e")
    assert str(e.value).endswith(
        f"T: checkpoint has 6, this run has 7 (trainer.resume={tmp_path / 'a'} continues a run "
        "of the same config: give that run's values, or train this config from step 0 in a new "
        "run directory without trainer.resume)")
    # into a directory holding another training (lr 0.01): its step-22 parameters were kept
    # under this run's meta, and its metrics.jsonl mixed with this run's; they are set aside
    train.train_and_evaluate(compose("trainer.epochs=2", "optimizer.lr=0.01"), tmp_path / "d")
    capsys.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=2", f"trainer.resume={tmp_path / 'a'}"),
                             tmp_path / "d")
    assert (f"trainer.resume={tmp_path / 'a'}: going on from step {first['steps']} of "
            f"{tmp_path / 'a' / 'checkpoints'}; kept the earlier files as checkpoints.set-aside-"
            ) in capsys.readouterr().err
    _assert_same_params(tmp_path / "b", tmp_path / "d")
    assert (tmp_path / "d" / "metrics.jsonl").read_text().count('"step"') == \
        (tmp_path / "b" / "metrics.jsonl").read_text().count('"step"')
    # the same command again (as after a pre-emption, or to train on) goes on with the run's
    # own training from that checkpoint, not from the checkpoint again
    capsys.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=3", f"trainer.resume={tmp_path / 'a'}"),
                             tmp_path / "d")
    err = capsys.readouterr().err
    assert (f"resuming from step {2 * first['steps']} (epoch 3, batch 0 of {first['steps']}) "
            f"in {tmp_path / 'd' / 'checkpoints'}") in err and "set-aside" not in err
    assert len(list((tmp_path / "d").glob("checkpoints.set-aside-*"))) == 1
    # and with trainer.resume=auto: its records start at epoch 2, none are lost (it said "holds
    # 2 of the 3 epoch records")
    train.train_and_evaluate(compose("trainer.epochs=4"), tmp_path / "d")
    err = capsys.readouterr().err
    assert "resuming from step" in err and "lost" not in err
    # its epoch records damaged, then its own command again (the path): said (it was not,
    # for any run started from another's checkpoint)
    lines = (tmp_path / "d" / "metrics.jsonl").read_text().splitlines(keepends=True)
    epochs = [i for i, x in enumerate(lines) if '"split": "epoch"' in x]
    (tmp_path / "d" / "metrics.jsonl").write_text("".join(lines[:epochs[0] + 1]))
    (tmp_path / "a" / "checkpoints").rename(tmp_path / "a" / "gone")  # (and the source's gone)
    train.train_and_evaluate(compose("trainer.epochs=5", f"trainer.resume={tmp_path / 'a'}"),
                             tmp_path / "d")
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'd' / 'metrics.jsonl'} holds 1 of the 3 epoch records up to step "
            f"{4 * first['steps']}: the missing ones are lost") in err
    assert f"resuming from step {4 * first['steps']}" in err


def test_a_signal_on_an_epochs_last_step_then_resume_records_the_epoch_once(tmp_path, monkeypatch):
    """SIGTERM on an epoch's last step saves checkpoint 11 before the epoch is evaluated. The
    resumed run evaluated and recorded it, but its epoch-end save found step 11 taken and kept
    the old meta, so every rerun of the finished run evaluated and recorded epoch 1 again."""
    from snntrain.runstate import Preempted, RunProgress

    cfg = compose("trainer.epochs=1")
    steps = train.build(cfg).steps_per_epoch
    advance, seen = RunProgress.advance, {"step": 0}

    def counting(self, *a, **k):
        advance(self, *a, **k)
        seen["step"] = self.step

    class SignalOnLastStep:
        received = signal.SIGTERM

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def received_any(self):
            return seen["step"] >= steps

    with monkeypatch.context() as m:
        m.setattr(RunProgress, "advance", counting)
        m.setattr(train, "Signals", SignalOnLastStep)
        with pytest.raises(Preempted):
            train.train_and_evaluate(cfg, tmp_path)
    # a resumed attempt killed after recording the epoch, before its save: the record is there,
    # the checkpoint still holds the epoch unevaluated (the next resume recorded it twice)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": steps, "epoch": 1, "split": "epoch", "killed": True}) + "\n")
    done = train.train_and_evaluate(cfg, tmp_path)
    assert done["status"] == "completed" and done["steps"] == steps
    meta = json.loads((tmp_path / "checkpoints" / str(steps) / "meta" / "metadata").read_text())
    assert (meta["epoch"], meta["batch_in_epoch"]) == (1, 0)
    again = train.train_and_evaluate(cfg, tmp_path)  # finished: nothing to train or record
    assert again["test_accuracy"] == done["test_accuracy"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["split"] == "epoch"] == [1]
    assert not any(r.get("killed") for r in records)


def test_a_runs_parameters_load_without_its_data(tmp_path):
    """params_of (and so ``python -m snntrain.export``) built the whole experiment, loading
    the data: a run on a user's .npz could not be exported once the file moved (or from
    another directory, its path being relative): "dataset.path=...: no such file"."""
    from snntrain import export

    rng = np.random.default_rng(0)
    x = rng.random((40, 5, 5)).astype(np.float32)
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=rng.integers(0, 3, 40), x_test=x[:10],
             y_test=rng.integers(0, 3, 10))
    cfg = compose("dataset=arrays", f"dataset.path={tmp_path / 'mine.npz'}", "trainer.epochs=1",
                  "model.neuron.reset=zero", "trainer.batch_size=16")
    run = tmp_path / "run"
    train.train_and_evaluate(cfg, run)
    want = params_of(run)
    (tmp_path / "mine.npz").unlink()
    got = params_of(run)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), want, got))
    assert export.main([str(run), "--nir", str(tmp_path / "m.nir")]) == 0
    # a config other than the run's: one line, not "corrupt ... no checkpoint"
    from snntrain.checkpoint import IncompatibleCheckpoint

    other = compose("dataset=arrays", f"dataset.path={tmp_path / 'mine.npz'}",
                    "model.hidden=[64]", "model.neuron.reset=zero")
    with pytest.raises(IncompatibleCheckpoint, match=r"is from another config than the one "
                       r"given: model.hidden: checkpoint has \[32\], cfg has \[64\]$"):
        params_of(run, other)
    # nor other dynamics: the weights in a model with another beta gave other spikes (NIR)
    other = compose("dataset=arrays", f"dataset.path={tmp_path / 'mine.npz'}",
                    "model.neuron.reset=zero", "model.neuron.beta=0.5")
    for load in (params_of, experiment.model_of):
        with pytest.raises(IncompatibleCheckpoint, match=r"is from another config than the one "
                           r"given: model.neuron.beta: checkpoint has 0.9, cfg has 0.5$"):
            load(run, other)
    # a value that does not shape the optimizer's state still reads the parameters
    same = compose("dataset=arrays", f"dataset.path={tmp_path / 'mine.npz'}",
                   "model.neuron.reset=zero", "+optimizer.b1=0.8")
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), want,
                                     params_of(run, same)))
    # nor another surrogate: it shapes the gradients only (the weights studied under another)
    same = compose("dataset=arrays", f"dataset.path={tmp_path / 'mine.npz'}",
                   "model.neuron.reset=zero", "surrogate=arctan")
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), want,
                                     params_of(run, same)))


def test_a_populations_groups_as_a_runs_resume_path_are_named(tmp_path):
    """trainer.resume=<a population trained in groups> for a solo run said only "no readable
    checkpoint in .../checkpoints" (its steps are in checkpoints/group<g>/), then called them
    a chunked population's: worker processes' groups, not chunked, are the same."""
    from snntrain import lifecycle
    from snntrain.checkpoint import Checkpoints

    (tmp_path / "pop" / "checkpoints" / "group0" / "11").mkdir(parents=True)
    own = Checkpoints(tmp_path / "run" / "checkpoints")
    with pytest.raises(train.ConfigError, match=r"no readable checkpoint in .*pop/checkpoints "
                       r"\(it holds a population's groups, group0 \.\.\.: only a population "
                       r"with the same members resumes it\)$"):
        lifecycle.restore(own, {}, {}, str(tmp_path / "pop"), [tmp_path / "run"], print)
    own.abandon()


def test_a_resumed_run_counts_the_time_of_its_earlier_attempts(tmp_path):
    """``wall_time_s`` and ``train_time_s`` covered the last attempt only: a pre-empted seed (or
    one trained on with more epochs) showed less time than it took in the report's mean. Each
    checkpoint records the time so far; the resumed attempt adds its own."""
    first = train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    step = Checkpoints(tmp_path / "checkpoints").steps()[-1]
    meta = json.loads((tmp_path / "checkpoints" / str(step) / "meta" / "metadata").read_text())
    history = meta["history"]
    wall, trained = history["wall_time_s"], history["train_time_s"]
    assert 0 < wall <= first["wall_time_s"] and 0 <= trained <= first["train_time_s"]
    assert history["compile_time_s"] == first["compile_time_s"] > 0
    assert history["timed_steps"] == first["steps"] - 1  # (the first step compiled)
    t0 = time.time()
    more = train.train_and_evaluate(compose("trainer.epochs=2"), tmp_path)
    attempt = time.time() - t0
    assert wall + 0.5 * attempt < more["wall_time_s"] <= wall + attempt
    assert more["train_time_s"] > trained
    assert more["compile_time_s"] > history["compile_time_s"]  # both attempts compiled
    # the samples of both attempts' timed steps over both attempts' training time
    timed = history["timed_steps"] + first["steps"] - 1
    assert more["samples_per_s"] == pytest.approx(timed * 64 / more["train_time_s"], rel=1e-9)


def test_a_run_that_diverges_under_python_is_recorded_and_closed(tmp_path):
    """train_and_evaluate raising Diverged left no summary.json (only the CLI wrote one), so
    the report listed the run as running, and its wandb run stayed open."""
    from snntrain import runs, writers
    from snntrain.runstate import Diverged

    open_before = writers.Wandb.open_runs
    with pytest.raises(Diverged) as e:
        train.train_and_evaluate(compose("optimizer.lr=1e38"), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == {"status": "diverged", "error": f"Diverged: {e.value}",
                       "diverged_at_step": e.value.step, "steps": e.value.step}
    assert runs.load_run(tmp_path).status == "diverged"
    assert writers.Wandb.open_runs == open_before


def test_on_a_full_disk_the_error_names_the_write_that_failed_first(tmp_path, monkeypatch):
    """Recording the failure wrote summary.json on the disk that was full, and its error
    replaced the first one: "writing summary.json failed" instead of metrics.jsonl."""
    import errno

    from snntrain import writers

    full = OSError(errno.ENOSPC, "No space left on device")

    def fail_metrics(*_a, **_k):
        raise writers.WriteFailed(tmp_path / "metrics.jsonl", full)

    def fail_json(path, _obj):
        raise writers.WriteFailed(path, full)

    monkeypatch.setattr(train, "train_epochs", fail_metrics)
    monkeypatch.setattr(writers, "write_json", fail_json)
    with pytest.raises(writers.WriteFailed) as e:
        train.train_and_evaluate(compose(), tmp_path)
    assert e.value.path == tmp_path / "metrics.jsonl"


def test_a_run_resumed_with_other_settings_keeps_its_earlier_config(tmp_path, capfd):
    """A resume with another optimizer.lr (which a resume accepts) replaced config.yaml: the
    run's record named only the last rate, although its first epoch ran at the other."""
    from omegaconf import OmegaConf

    train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    before = (tmp_path / "config.yaml").read_text()
    capfd.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=2", "optimizer.lr=0.01"), tmp_path)
    kept = list(tmp_path.glob("config.yaml.earlier-*"))
    assert len(kept) == 1 and kept[0].read_text() == before
    assert OmegaConf.load(tmp_path / "config.yaml").optimizer.lr == 0.01
    assert (f"resumed with other settings: optimizer.lr 0.002 -> 0.01, trainer.epochs 1 -> 2 "
            f"(the earlier config.yaml is kept as {kept[0].name})") in capfd.readouterr().err
    train.train_and_evaluate(compose("trainer.epochs=2", "optimizer.lr=0.01"), tmp_path)
    assert len(list(tmp_path.glob("config.yaml.earlier-*"))) == 1  # (the same values: none)
    capfd.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=3", "optimizer.lr=0.01",
                                     "trainer.progress=true"), tmp_path)
    assert "resumed with other settings: trainer.epochs 2 -> 3 (the earlier" in \
        capfd.readouterr().err  # (not the progress bar: it computes nothing)
    train.train_and_evaluate(compose("trainer.epochs=1", "trainer.resume=never"), tmp_path)
    assert len(list(tmp_path.glob("config.yaml.earlier-*"))) == 2  # (a new start: no resume)
    assert "resumed with" not in capfd.readouterr().err
    # a hand edit's typo made it unreadable: it was replaced without a trace (tester)
    broken = (tmp_path / "config.yaml").read_text() + ": : bad [\n"
    (tmp_path / "config.yaml").write_text(broken)
    train.train_and_evaluate(compose("trainer.epochs=2"), tmp_path)
    kept = sorted(set(tmp_path.glob("config.yaml.earlier-*")) - set(kept))
    assert [k.read_text() for k in kept if k.read_text() == broken] == [broken]
    assert ("the earlier config.yaml could not be read as a config; it is kept as "
            "config.yaml.earlier-") in capfd.readouterr().err


def test_an_earlier_trainings_hydra_files_are_set_aside_with_it(tmp_path):
    """Hydra writes this attempt's .hydra/ over the earlier training's before the run starts;
    what it held is kept (in memory at start-up) and written beside the other set-aside
    records."""
    from snntrain import rundir

    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    (hydra / "overrides.yaml").write_text("- optimizer.lr=0.1\n")
    rundir.remember_hydra_files(tmp_path)
    (hydra / "overrides.yaml").write_text("- trainer.resume=never\n")  # as Hydra does
    aside = rundir.set_aside_hydra_files(tmp_path)
    assert aside.name.startswith(".hydra.set-aside-")
    assert (aside / "overrides.yaml").read_text() == "- optimizer.lr=0.1\n"
    assert (hydra / "overrides.yaml").read_text() == "- trainer.resume=never\n"
    assert rundir.set_aside_hydra_files(tmp_path / "other") is None


def test_a_finished_run_without_its_checkpoints_is_set_aside_not_overwritten(tmp_path, capsys):
    """Checkpoints deleted to save disk, then the directory run again with another config: it
    trained from step 0 and replaced config.yaml, metrics.jsonl and summary.json without a
    word, and, stopped early, left the old run's completed summary.json under the new config,
    which the report credited with the old result (tester). The earlier files are set aside
    now, with a line saying so."""
    train.train_and_evaluate(compose("trainer.epochs=1"), tmp_path)
    old = _files(tmp_path)
    shutil.rmtree(tmp_path / "checkpoints")
    capsys.readouterr()
    new = train.train_and_evaluate(compose("trainer.epochs=1", "model.hidden=[16]"), tmp_path)
    err = capsys.readouterr().err
    assert (f"no checkpoint in {tmp_path / 'checkpoints'}, but {tmp_path.name}/summary.json "
            "holds an earlier training's record: starting from step 0; kept the earlier files "
            "as ") in err
    kept = {p.name.split(".set-aside-")[0]: p for p in tmp_path.iterdir()
            if ".set-aside-" in p.name}
    assert set(kept) == {"metrics.jsonl", "summary.json", "config.yaml"}
    for name in kept:
        assert kept[name].read_bytes() == old[name], name
    assert "- 16" in (tmp_path / "config.yaml").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["n_params"] == new["n_params"]
    assert new["n_params"] != json.loads(old["summary.json"])["n_params"]
    # a fresh directory, and a rerun of the new run with its checkpoints, set nothing aside
    capsys.readouterr()
    train.train_and_evaluate(compose("trainer.epochs=1", "model.hidden=[16]"), tmp_path)
    assert "kept the earlier files" not in capsys.readouterr().err


@pytest.mark.slow  # (~60 s: the formulations are timed on each shape)
def test_a_resume_keeps_the_conv_formulations_its_run_chose(tmp_path, monkeypatch):
    """``model.conv_method=auto``'s choice came from the machine's cache (or the rule with
    SNNTRAIN_AUTOTUNE=0), not from the run: a resume on another node, with a cleared cache or
    with timing off chose another formulation, which rounds differently, and the run went on
    silently different (test accuracy 92.76% against 91.64% uninterrupted; tester). The
    checkpoint records the choices and the resume uses them."""
    from snntrain import autotune

    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "1")
    monkeypatch.setenv("SNNTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "_memory", {})
    run = ("logger=none", "trainer.progress=false", "model=conv", "model.channels=[2,3]",
           "optimizer.schedule=constant", "T=3", "trainer.batch_size=128")
    train.train_and_evaluate(compose(*run, "trainer.epochs=1", tiny=False), tmp_path / "a")
    meta = Checkpoints(tmp_path / "a" / "checkpoints", write=False).newest_meta()
    chosen = meta["autotune"]
    assert chosen and all(v in ("s2d", "dense", "lax") for v in chosen.values())
    cache = tmp_path / "cache" / "autotune.json"
    first = cache.read_text()
    table = json.loads(first)  # another machine's (or a cleared cache's) choices
    for entry in table.values():
        entry["choice"] = "lax" if entry["choice"] != "lax" else "s2d"
    cache.write_text(json.dumps(table))
    monkeypatch.setattr(autotune, "_memory", {})
    train.train_and_evaluate(compose(*run, "trainer.epochs=2", tiny=False), tmp_path / "a")
    assert Checkpoints(tmp_path / "a" / "checkpoints",
                       write=False).newest_meta()["autotune"] == chosen
    cache.write_text(first)  # the uninterrupted run, with the first attempt's choices
    monkeypatch.setattr(autotune, "_memory", {})
    train.train_and_evaluate(compose(*run, "trainer.epochs=2", tiny=False), tmp_path / "b")
    assert _records(tmp_path / "a") == _records(tmp_path / "b")
    _assert_same_params(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow  # (~30-50 s: two trainings)
def test_a_checkpoint_of_an_earlier_state_nesting_resumes_by_its_arrays(tmp_path, monkeypatch,
                                                                          capsys):
    """AdamW's decay is wrapped in optax.masked since it decays the synaptic weights only, which
    nests the optimizer state differently with the same arrays: an earlier run's checkpoint was
    called "corrupt or truncated", set aside, and the run started again from step 0
    (reviewer). It resumes now, its arrays matched by their paths; a state whose arrays differ
    is refused in one line, not set aside."""
    from snntrain import optim

    run = ("optimizer=adamw", "optimizer.weight_decay=0.1", "optimizer.schedule=constant")
    monkeypatch.setattr(optim, "synaptic_weights", None)  # the earlier AdamW: no mask
    first = train.train_and_evaluate(compose(*run, "trainer.epochs=1"), tmp_path)
    saved = Checkpoints(tmp_path / "checkpoints", write=False)
    step = saved.steps()[-1]
    exp = train.build(compose(*run, "trainer.epochs=1"))
    old_state, _ = saved.restore(exp.init_state(), train.fingerprint(exp))
    monkeypatch.undo()
    exp = train.build(compose(*run, "trainer.epochs=2"))
    state = exp.init_state()
    assert jax.tree.structure(state) != jax.tree.structure(old_state)  # (the nesting differs)
    restored, meta = Checkpoints(tmp_path / "checkpoints", write=False).restore(
        state, train.fingerprint(exp))
    assert meta["step"] == step == first["steps"]
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(old_state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    capsys.readouterr()
    again = train.train_and_evaluate(compose(*run, "trainer.epochs=2"), tmp_path)
    err = capsys.readouterr().err
    assert "corrupt" not in err and f"resuming from step {step}" in err
    assert "nested as an earlier snntrain nested it" in err  # (what the decay does now)
    assert again["steps"] == 2 * step
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if "unreadable" in p.name]
    # arrays that differ (another state, the same fingerprint): refused, nothing set aside
    other = Checkpoints(tmp_path / "other", async_save=False)
    other.save(3, {"params": state.params}, {"step": 3, "fingerprint": train.fingerprint(exp)})
    other.close()
    with pytest.raises(CheckpointError, match=r"holds a training state of another structure "
                                              r"\(an earlier snntrain's\?\): this run's "
                                              r"opt_state/.* is not in it \(use "):
        Checkpoints(tmp_path / "other").restore(state, train.fingerprint(exp))
    assert (tmp_path / "other" / "3").is_dir()


def _two_steps(directory, state, fingerprint=None):
    """Checkpoints 1 and 2 of ``state`` (2 with each array + 1) in ``directory``."""
    ckpt = Checkpoints(directory, async_save=False)
    for step in (1, 2):
        ckpt.save(step, jax.tree.map(lambda x, s=step: x + s - 1, state),
                  {"step": step, "fingerprint": fingerprint or {}})
    ckpt.close()


def test_a_newest_checkpoint_with_a_damaged_tree_falls_back_to_the_one_before(tmp_path):
    """A newest checkpoint whose tree metadata lost an entry went to the restore by paths
    (another nesting), which called it another snntrain's state and stopped the run, telling
    the user to start again (trainer.resume=never), although the checkpoint before it was
    whole (reviewer). An older checkpoint that restores wins; the damaged one is set aside."""
    state = {"params": {"w": jnp.ones((3, 2))}, "opt": {"count": jnp.zeros((), jnp.int32),
                                                       "mu": jnp.zeros((3, 2))}}
    _two_steps(tmp_path, state)
    meta_file = tmp_path / "2" / "state" / "_METADATA"
    meta = json.loads(meta_file.read_text())
    lost = next(k for k in meta["tree_metadata"] if "count" in k)
    del meta["tree_metadata"][lost]
    meta_file.write_text(json.dumps(meta))
    said = []
    restored, meta = Checkpoints(tmp_path).restore(state, {}, said.append)
    assert meta["step"] == 1
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert said[0].startswith(f"checkpoint {tmp_path / '2'} is corrupt (its state's structure "
                              "differs: this run's opt/count is not in it); set aside as "), said
    assert said[1] == (f"using checkpoint {tmp_path / '1'}, the newest readable one "
                       "(not step 2)")
    assert not (tmp_path / "2").exists()
    # every checkpoint of that structure: refused in one line, nothing set aside
    _two_steps(tmp_path / "all", {"params": state["params"]})
    with pytest.raises(IncompatibleCheckpoint, match="this run's opt/count is not in it"):
        Checkpoints(tmp_path / "all").restore(state, {})
    assert (tmp_path / "all" / "1").is_dir() and (tmp_path / "all" / "2").is_dir()


class _Fields(NamedTuple):  # (fields not in alphabetical order)
    nu: jax.Array
    mu: jax.Array


@pytest.mark.parametrize("legacy", [False, True])
def test_a_renested_state_whose_leaf_order_changed_restores_and_is_checked(tmp_path, legacy):
    """After a restore by paths the digest was taken in the new nesting's leaf order, so a
    re-nesting that reorders the same arrays (a dict's sorted keys becoming a NamedTuple's
    fields) called the checkpoint corrupt and set it aside (reviewer). Checkpoints hold a
    digest by path now; an earlier checkpoint's tree-order digest is checked in its own
    nesting. A damaged array is still found either way."""
    saved = {"params": jnp.ones(3), "opt": {"mu": jnp.zeros(3), "nu": jnp.full(3, 2.0)}}
    _two_steps(tmp_path, saved)
    if legacy:  # (a checkpoint from before the digest by path: the tree-order digest)
        for step in (1, 2):
            meta_file = tmp_path / str(step) / "meta" / "metadata"
            meta = json.loads(meta_file.read_text())
            del meta["state_digest_by_path"]
            meta["state_digest"] = state_digest(jax.tree.map(lambda x, s=step: x + s - 1,
                                                             saved))
            meta_file.write_text(json.dumps(meta))
    target = {"params": jnp.zeros(3), "opt": _Fields(nu=jnp.zeros(3), mu=jnp.zeros(3))}
    said = []
    state, meta = Checkpoints(tmp_path).restore(target, {}, said.append)
    assert meta["step"] == 2 and not said
    assert isinstance(state["opt"], _Fields)
    np.testing.assert_array_equal(np.asarray(state["opt"].nu), np.full(3, 3.0))
    np.testing.assert_array_equal(np.asarray(state["opt"].mu), np.ones(3))
    # step 2's nu written over with step 1's (well-formed, the wrong bytes): found
    shutil.rmtree(tmp_path / "2" / "state")
    shutil.copytree(tmp_path / "1" / "state", tmp_path / "2" / "state")
    state, meta = Checkpoints(tmp_path).restore(target, {}, said.append)
    assert meta["step"] == 1 and said[0].startswith(
        f"checkpoint {tmp_path / '2'} is corrupt (its arrays differ from the digest")
