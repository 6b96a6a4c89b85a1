"""A population's groups trained in worker processes, one core each
(``trainer.population.workers``): every member equals the same population trained in one
process (which equals each member's solo run: tests/test_population.py) exactly, tolerance 0,
since each worker trains its group with the same program a chunked population compiles."""

import json
import os
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from _workers import cli, popen
from conftest import compose

from snntrain import hostenv, population, progress, workers
from snntrain.config import ConfigError
from snntrain.train import train_and_evaluate

POP = "trainer.population"
SMALL = ("logger=none", "trainer.progress=false", "trainer.epochs=2", "model.hidden=[16]",
         "T=6", "trainer.batch_size=64")
AXES = (f"{POP}.surrogate.name=[sigmoid,arctan]", f"{POP}.seed=[0,1]")
two_cores = pytest.mark.skipif(hostenv.usable_cores() < 2, reason="needs 2 usable cores")


def _member_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "members").iterdir(), key=lambda p: int(p.name.split("-")[0]))


def _records(run_dir: Path) -> list[dict]:
    timing = {"samples_per_s", "wall_time_s", "train_time_s", "compile_time_s"}
    return [{k: v for k, v in json.loads(x).items() if k not in timing}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_groups_are_dealt_round_robin_to_at_most_one_worker_each():
    assert workers.assign(5, 2) == [[0, 2, 4], [1, 3]]
    assert workers.assign(1, 2) == [[0]]
    assert workers.assign(3, 3) == [[0], [1], [2]]


@two_cores
def test_worker_settings_are_checked_in_one_line(monkeypatch):
    cores = hostenv.usable_cores()
    assert population.worker_count(compose(*AXES)) == 1  # auto, from Python: this process
    monkeypatch.setenv(hostenv.WORKERS_MARK, str(cores))  # (as the command line marks it)
    assert population.worker_count(compose(*AXES)) == cores
    assert population.worker_count(compose(*AXES, f"{POP}.workers=null")) == 1
    monkeypatch.delenv(hostenv.WORKERS_MARK)
    # the members dealt in turn (5 members in groups of at most 3: 0, 2, 4 and 1, 3)
    ms = population.members(compose(f"{POP}.seed=[0,1,2,3,4]"))
    assert [[m.index for m in p] for p in population.partition(ms, 3, strided=True)] == \
        [[0, 2, 4], [1, 3]]
    assert [[m.index for m in p] for p in population.partition(ms, 3)] == [[0, 1, 2], [3, 4]]
    with pytest.raises(ConfigError, match=rf"^{POP}.workers={cores + 1} is invalid: must be "
                                          rf"auto, null or an integer from 1 .* to {cores}"):
        population.worker_count(compose(*AXES, f"{POP}.workers={cores + 1}"))
    with pytest.raises(ConfigError, match=rf"{POP}.workers=2 trains each group on one core, "
                                          rf"without a mesh: unset {POP}.mesh"):
        population.check_members(compose(*AXES, f"{POP}.workers=2", f"{POP}.mesh=[1,1]"))
    with pytest.raises(ConfigError, match=rf"{POP}.cpu_devices=2 and {POP}.workers=2 both "
                                          "divide the CPU"):
        population.cpu_devices(compose(*AXES, f"{POP}.workers=2", f"{POP}.cpu_devices=2"))
    assert population.cpu_devices(compose(*AXES, f"{POP}.workers=2")) == 1  # (no split)
    assert f"{POP}.workers=2 has no effect" in population.unused_settings(
        compose(f"{POP}.workers=2"))


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
@two_cores
def test_worker_groups_equal_the_population_trained_in_one_process(tmp_path, capfd):
    one = train_and_evaluate(compose(*SMALL, *AXES), tmp_path / "one")
    both = train_and_evaluate(compose(*SMALL, *AXES, f"{POP}.workers=2"), tmp_path / "w")
    err = capfd.readouterr().err
    assert "population: 2 groups in 2 worker processes, one core each" in err
    assert "group 1: epoch   2" in err and "group 2: epoch   2" in err
    assert sorted(p.name for p in (tmp_path / "w" / "checkpoints").iterdir()) == \
        ["group0", "group1"]
    a, b = _member_dirs(tmp_path / "one"), _member_dirs(tmp_path / "w")
    assert [d.name for d in a] == [d.name for d in b] and len(a) == 4
    for x, y in zip(a, b, strict=True):
        assert _records(x) == _records(y), x.name
    saved_a, saved_b = population.params_of(tmp_path / "one"), population.params_of(tmp_path / "w")
    for name in saved_a:
        for p, q in zip(jax.tree.leaves(saved_a[name]), jax.tree.leaves(saved_b[name]),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    assert both["completed"] == 4 and both["status"] == "completed"
    assert both["test_accuracy"] == one["test_accuracy"]
    # the population's wall time covers its slowest worker's group (how much the side-by-side
    # groups save is a speed: scripts/bench_population.py measures it)
    groups = {json.loads((d / "summary.json").read_text())["population"]["group_wall_time_s"]
              for d in b}
    assert len(groups) == 2 and max(groups) <= both["wall_time_s"]
    # a member's times are its share of its group's, and of the two groups side by side: the
    # members' sum is the time spent once (it was twice that: each worker's group counted)
    for d in b:
        s = json.loads((d / "summary.json").read_text())
        for k in ("wall_time_s", "train_time_s", "compile_time_s"):
            assert s[k] == pytest.approx(s["population"][f"group_{k}"] / (2 * 2)), (d.name, k)
    # the same command again: nothing left to train, no worker started
    again = train_and_evaluate(compose(*SMALL, *AXES, f"{POP}.workers=2"), tmp_path / "w")
    err = capfd.readouterr().err
    assert "worker processes" not in err and err.count("nothing to train for members") == 2
    assert again["test_accuracy"] == both["test_accuracy"]
    # on for one more epoch in one process: each group from its checkpoint, as the workers
    # grouped them (every other member), equal to the one-process population trained on
    train_and_evaluate(compose(*SMALL, *AXES, "trainer.epochs=3"), tmp_path / "one")
    capfd.readouterr()
    train_and_evaluate(compose(*SMALL, *AXES, "trainer.epochs=3", f"{POP}.workers=null"),
                       tmp_path / "w")
    err = capfd.readouterr().err
    assert err.count("resuming 2 members from step") == 2 and "worker processes" not in err
    for x, y in zip(_member_dirs(tmp_path / "one"), _member_dirs(tmp_path / "w"), strict=True):
        assert _records(x) == _records(y), x.name


@two_cores
def test_a_worker_that_fails_stops_the_others_at_once(tmp_path, capfd):
    """One worker fails as it starts (a group its parent's population does not have) while
    the other starts a long run: the other is stopped at once (if it was training: it saves
    its checkpoint and is recorded as pre-empted, not trained to the end); the run ends in
    one line naming the failed worker's group."""
    from omegaconf import OmegaConf

    cfg = compose(*SMALL, *AXES, "trainer.epochs=200", f"{POP}.workers=null",
                  f"{POP}.cpu_devices=1")
    t0, said = time.time(), []
    with pytest.raises(ConfigError, match=r"^the worker training group\(s\) 2 of .* stopped on a "
                                          r"configuration error: trainer.population: a worker "
                                          r"was given groups \[1\] of 2, members of 4: its "
                                          r"parent's population differs$"):
        workers.run(OmegaConf.to_yaml(cfg, resolve=True), tmp_path, [[0, 2], [1, 9]],
                    [[0], [1]], t0, lambda: False, said.append)
    assert "a worker was given groups [1] of 2, members of 4" in capfd.readouterr().err
    assert ("population: the worker training group(s) 2 failed; stopping the others (each "
            "saves its checkpoint)") in said
    for name in ("0-surrogate=sigmoid,seed=0", "2-surrogate=arctan,seed=0"):
        path = tmp_path / "members" / name / "summary.json"
        if path.exists():  # (else it was stopped while it started: on a busy machine the
            # other can fail before this one's training loop is there to save a checkpoint)
            summary = json.loads(path.read_text())
            assert summary["status"] == "preempted" and summary["epochs"] < 200, summary


def test_workers_a_signal_stops_before_their_training_loop_are_preempted_not_failed(tmp_path):
    """A SIGTERM or Ctrl-C that reaches the workers while they start (before their training
    loop has a checkpoint to save) stops them with 128 + the signal (or the signal itself):
    the run is pre-empted, not failed (it said "stopped with exit status 143 (its error is
    above)")."""
    t0 = time.time()
    codes = workers.run("{}", tmp_path, [[0], [1]], [[0], [1]], t0,
                        lambda: time.time() - t0 > 0.8, lambda _: None)  # (in their imports)
    assert codes == [workers.PREEMPTED] * 2


def test_workers_a_signal_from_elsewhere_stops_while_they_start_are_preempted(monkeypatch,
                                                                             tmp_path):
    """A SIGTERM to the workers alone (not to their parent) while they started failed the
    run ("stopped with exit status 143 (its error is above)", nothing above), and one in
    their training loop pre-empted it: both pre-empt it now."""
    import subprocess
    import threading

    started, popen = [], subprocess.Popen

    def recorded(*args, **kw):
        started.append(popen(*args, **kw))
        return started[-1]

    def stop_both():  # (once both have started: while they import)
        t0 = time.time()
        while len(started) < 2 and time.time() - t0 < 30:
            time.sleep(0.01)
        time.sleep(0.2)
        for p in started:
            p.send_signal(signal.SIGTERM)

    monkeypatch.setattr(workers.subprocess, "Popen", recorded)
    threading.Thread(target=stop_both, daemon=True).start()
    codes = workers.run("{}", tmp_path, [[0], [1]], [[0], [1]], time.time(), lambda: False,
                        lambda _: None)
    assert len(started) == 2 and codes == [workers.PREEMPTED] * 2


RUN = ("logger=none", "trainer.progress=false", "trainer.epochs=3", "trainer.batch_size=32",
       "model.hidden=[64]", "T=8", "trainer.checkpoint_every=7", "trainer.log_every=1",
       *AXES, f"{POP}.workers=2")


@two_cores
@pytest.mark.slow
def test_sigterm_stops_every_worker_at_a_checkpoint_and_the_run_resumes_bit_identically(
        tmp_path):
    run_dir = tmp_path / "stopped"
    # (stopped on its way to 500 epochs, then resumed for as many epochs as the uninterrupted
    # run: on a busy machine a group may start many seconds after the other, and with 3
    # epochs one had finished before the other reached step 14)
    proc = popen(*RUN, "trainer.epochs=500", f"hydra.run.dir={run_dir}")
    t0 = time.time()
    while not all((run_dir / "checkpoints" / g).is_dir() and any(
            c.name.isdigit() and int(c.name) >= 14 for c in (run_dir / "checkpoints" / g).iterdir())
            for g in ("group0", "group1")):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() - t0 < 300
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "preempted"
    summaries = [json.loads((m / "summary.json").read_text()) for m in _member_dirs(run_dir)]
    assert all(s["status"] == "preempted" for s in summaries), err[-3000:]
    epochs = f"trainer.epochs={max(s['epochs'] for s in summaries) + 2}"  # (past every stop)
    full = tmp_path / "full"
    p = cli(*RUN, epochs, f"hydra.run.dir={full}", devices=None)
    assert p.returncode == 0, p.stderr[-3000:]
    p = cli(*RUN, epochs, f"hydra.run.dir={run_dir}", devices=None)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count("resuming 2 members from step") == 2
    for a, b in zip(_member_dirs(full), _member_dirs(run_dir), strict=True):
        assert _records(a) == _records(b), a.name


def test_the_parent_reads_its_workers_lines_whole_and_their_last_line_without_newline():
    """The workers' output reaches the parent through pipes it reads while it waits (its
    console prints each line above the bars): lines split across reads arrive whole, and a
    last line without a newline arrives when the pipe closes."""
    import os

    got: list[str] = []
    r, w = os.pipe()
    with workers._Pipes() as pipes:
        pipes.add(r, got.append, lambda: os.close(r))
        os.write(w, "epoch 1  α\nepo".encode())
        assert pipes.pump(1.0) and got == ["epoch 1  α"]
        os.write(w, b"ch 2\r\n10%\r 50%\r100%\nlast")  # (\r: a line rewritten in place)
        pipes.pump(1.0)
        os.close(w)
        pipes.drain(2.0)
    assert got == ["epoch 1  α", "epoch 2", "100%", "last"]
    # a last line without a newline while another process still holds the pipe open (as
    # wandb's service may), and a reader that fails: the line is lost, the reading goes on
    got.clear()
    r, w = os.pipe()
    with workers._Pipes() as pipes:
        pipes.add(r, lambda t: got.append(t) if t != "bad" else 1 / 0, lambda: os.close(r))
        os.write(w, b"bad\nfirst\nlast words")
        pipes.drain(0.5)
    os.close(w)
    assert got == ["first", "last words"]
    with pytest.raises(OSError):
        os.fstat(r)  # (closed)


def test_workers_hold_the_run_directorys_lock_until_they_exit(tmp_path):
    """The parent's lock on the run directory is passed to its workers: after the parent is
    killed, the workers still saving their checkpoints keep the directory locked (a rerun
    started then was let in)."""
    import subprocess
    import sys

    from snntrain import rundir

    with rundir.RunLock(tmp_path):
        fd = rundir.locked_fd(tmp_path)
        assert fd is not None
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                                 pass_fds=(fd,))
    assert rundir.locked_fd(tmp_path) is None
    try:
        with pytest.raises(rundir.RunDirBusy), rundir.RunLock(tmp_path):
            pass
    finally:
        child.kill()
        child.wait()
    with rundir.RunLock(tmp_path):  # (free once the child has gone)
        pass


def test_a_workers_bar_is_relayed_to_the_parents_bars(monkeypatch):
    """A worker draws no bar: its labelled bar sends its fields (at most every RELAY_S, and
    at its last step) as JSON lines, which the parent's bar of that worker shows."""
    import io

    sent = io.StringIO()
    monkeypatch.setattr(progress, "_relay", sent)
    bar = progress.Progress(40, 20, enabled=False, batch_size=8, label="group 1+3")
    with bar:
        bar.update(0, {})
        bar.update(1, {"loss": 2.5, "accuracy": 0.25})  # (within RELAY_S: not sent)
        bar.update(40, {"loss": 0.5, "accuracy": 0.75})  # the last step: sent
    lines = [json.loads(x) for x in sent.getvalue().splitlines()]
    assert [(x["step"], x["epoch"]) for x in lines] == [(0, "1/2"), (40, "2/2")]
    assert lines[0] == {"label": "group 1+3", "step": 0, "total": 40, "epoch": "1/2",
                        "status": progress.COMPILING}
    assert lines[1]["status"].startswith("loss 0.500 acc 0.750")
    bars = progress.WorkerBars(2, enabled=False)
    with bars:
        bars.relayed(1, json.dumps(lines[1]))
        bars.relayed(0, "not a bar")  # (ignored)
    task = bars._bars.tasks[1]
    assert (task.description, task.completed, task.total, task.fields["epoch"]) == \
        ("group 1+3", 40, 40, "2/2")
    assert bars._bars.tasks[0].description == "worker 1"
    assert not bars._bars.tasks[0].visible and bars._bars.tasks[1].visible  # (never relayed)


# a network whose matrix products XLA:CPU splits by its threads (a solo run on two cores
# differs from one on one core from step 40: the weight gradient's sums)
WIDE = ("logger=none", "trainer.progress=false", "trainer.epochs=1", "model.hidden=[256]",
        "T=40", "trainer.batch_size=16", *AXES)


@two_cores
def test_worker_members_are_bit_identical_to_their_runs_on_one_core(tmp_path):
    """A worker runs on one core, whose arithmetic XLA:CPU chooses for one thread: its members
    equal the population (so each member's solo run) trained on one core, to the bit. The
    README had said: to the population in one process on every core (true only of networks
    too small for XLA to split their products)."""
    from _workers import python

    train_and_evaluate(compose(*WIDE, f"{POP}.workers=2"), tmp_path / "w")
    python("import os; os.sched_setaffinity(0, {0})\n"  # (before JAX starts)
           "from conftest import compose\n"
           "from snntrain.train import train_and_evaluate\n"
           f"train_and_evaluate(compose(*{WIDE!r}, '{POP}.workers=null'), "
           f"{str(tmp_path / 'one')!r})",
           devices=None, environ={"PYTHONPATH": str(Path(__file__).parent)})
    a, b = _member_dirs(tmp_path / "one"), _member_dirs(tmp_path / "w")
    assert [d.name for d in a] == [d.name for d in b] and len(a) == 4
    for x, y in zip(a, b, strict=True):
        assert _records(x) == _records(y), x.name


def test_one_group_left_of_a_population_in_workers_trains_in_a_worker(monkeypatch, tmp_path):
    """With one group left to train it trained in the parent, on every core: another
    arithmetic than the worker's, so a population resumed after its parent was killed was not
    bit-identical to an uninterrupted one."""
    calls = []
    monkeypatch.setattr(population, "_workers_here", lambda cfg: 2)
    monkeypatch.setattr(population, "_group_done", lambda run_dir, part, cfg, say=None: part[0]
                        .index == 0)  # (group 0: members 0 and 2, finished)
    monkeypatch.setattr(population, "_train_in_workers", lambda cfg, run_dir, parts, side, *a:
                        calls.append(side) or ("completed", 1.0, True))
    monkeypatch.setattr(population, "population_summary", lambda *a, **k: {
        "completed": 4, "diverged": 0, "status": "completed"})
    train_and_evaluate(compose(*SMALL, *AXES, f"{POP}.chunk=2"), tmp_path)
    assert calls == [1]


def test_workers_a_signal_stops_after_their_groups_finished_leave_the_run_completed(
        monkeypatch, tmp_path):
    """A worker stopped by a signal (exit 75) after its last group had finished (in its wandb
    runs' ending) recorded the whole population pre-empted; a group it had not finished
    still pre-empts it."""
    cfg = compose(*SMALL, *AXES, f"{POP}.chunk=2", f"{POP}.workers=null")
    train_and_evaluate(cfg, tmp_path)  # (the members' records the workers write below)
    parts = population.partition(population.members(cfg), 2)
    paths = sorted((tmp_path / "members").glob("*/summary.json"))
    done = {p: p.read_text() for p in paths}

    def trained(finished):  # workers.run: writes the members' records, one stopped after
        def run(*a, **k):
            for p in finished:
                p.write_text(done[p])
            return [workers.PREEMPTED, 0]
        return run

    for finished, status in ((paths, "completed"), (paths[1:], "preempted")):
        for p in paths:  # (before the workers: every group has members left to train)
            p.write_text(json.dumps(json.loads(done[p]) | {"status": "preempted"}))
        monkeypatch.setattr(population.workers, "run", trained(finished))
        assert population._train_in_workers(cfg, tmp_path, parts, 2, lambda: False,
                                            time.time() - 1)[0] == status
    # an earlier attempt's records of a group this attempt never reached (trainer.resume=
    # never sets them aside only when the group starts) are not this attempt's training
    for p in paths:
        p.write_text(done[p])
        os.utime(p, (time.time() - 100,) * 2)
    monkeypatch.setattr(population.workers, "run", trained(paths[:1]))
    assert population._train_in_workers(compose(*SMALL, *AXES, f"{POP}.chunk=2",
                                                "trainer.resume=never"),
                                        tmp_path, parts, 2, lambda: False,
                                        time.time() - 10)[0] == "preempted"


def test_a_workers_output_reaches_the_parent_as_utf8_whatever_its_locale(capsys):
    """A worker's lines were encoded in its locale's encoding (latin-1: 'loss α→β' arrived
    empty) and read as UTF-8; a line with ':b:' was printed as an emoji."""
    import os
    import subprocess
    import sys

    code = ("import os, sys; from snntrain.worker import _output_to_parent; "
            "_output_to_parent(int(sys.argv[1])); print('loss α→β :b:'); "
            "print('err café', file=sys.stderr); from snntrain import progress; "
            "progress._send({'x': 'é'}); print(os.get_inheritable(int(sys.argv[1])))")
    r, w = os.pipe()
    p = subprocess.run([sys.executable, "-c", code, str(w)], pass_fds=(w,), capture_output=True,
                       env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=120)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert json.loads(f.read().decode()) == {"x": "é"}
    assert p.stdout.decode().splitlines() == ["loss α→β :b:", "False"]
    assert p.stderr.decode().strip() == "err café"
    bars = progress.WorkerBars(1, enabled=False)
    bars.line("loss α→β :b: a:b:c")
    assert capsys.readouterr().err == "loss α→β :b: a:b:c\n"


def test_a_worker_whose_parent_is_gone_goes_on_without_its_console():
    """After the parent died, the worker's prints must not fail (its SIGTERM follows, and it
    saves its checkpoint first): writes to the closed pipe are dropped."""
    import os

    from snntrain.worker import _ToParent

    r, w = os.pipe()
    os.close(r)
    out = _ToParent(os.fdopen(w, "w", buffering=1))
    assert out.write("stopped: saving a checkpoint\n") > 0
    out.flush()


def test_a_worker_killed_by_a_signal_is_said_so():
    """It said "(its error is above)", with nothing above."""
    err = workers._failure("the worker training group(s) 2 of R", -9, None)
    assert isinstance(err, workers.WorkerFailed) and str(err) == (
        "the worker training group(s) 2 of R stopped with exit status -9 (killed by SIGKILL "
        "(the kernel's out-of-memory killer sends it, or a kill -9)); "
        "the others saved their checkpoints: rerun the command to resume")
    assert "(MemoryError: x)" in str(workers._failure("w", 1, "MemoryError: x"))
    assert "(its error is above)" in str(workers._failure("w", 1, None))


def test_a_second_stop_signal_while_the_first_is_said_adds_nothing(monkeypatch, capsys):
    """A worker's Ctrl-C line and the parent's forwarded SIGTERM came out joined on one line
    (``... resumesnntrain: terminated (SIGTERM); ...``)."""
    import builtins
    import os

    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    stop = hostenv.stop_in_one_line("advice")
    real_print = builtins.print

    def print_interrupted(*args, **kw):  # the SIGTERM arrives while the first line is printed
        stop(signal.SIGTERM)
        real_print(*args, **kw)

    monkeypatch.setattr(builtins, "print", print_interrupted)
    stop(signal.SIGINT)
    assert capsys.readouterr().err == "snntrain: interrupted (Ctrl-C); advice\n"
    assert exits == [128 + signal.SIGINT]


FULL_DISK = '''
import builtins, errno
if b"snntrain.worker" in open("/proc/self/cmdline", "rb").read():
    _open = builtins.open

    class _Full:
        def __init__(self, f):
            self.f = f
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")
        def __getattr__(self, name):
            return getattr(self.f, name)

    def _full_open(path, mode="r", *args, **kw):
        f = _open(path, mode, *args, **kw)
        return _Full(f) if str(path).endswith("metrics.jsonl") and "a" in mode else f

    builtins.open = _full_open
'''


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
@two_cores
def test_a_full_disk_in_a_worker_is_said_as_a_full_disk(tmp_path):
    """A worker's WriteFailed (exit status 2, a full disk) was read as a configuration
    error: "stopped on a configuration error", and summary.json said "ConfigError: ..."."""
    import subprocess
    import sys

    from _workers import env

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(FULL_DISK)
    run_dir = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "snntrain", *RUN, f"hydra.run.dir={run_dir}"],
                       env=env(1) | {"PYTHONPATH": str(tmp_path / "site")}, capture_output=True,
                       text=True, timeout=300)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "configuration error" not in last and "No space left on device" in last, last
    assert last.startswith("snntrain: error: the worker training group(s) "), last
    error = json.loads((run_dir / "summary.json").read_text())["error"]
    assert not error.startswith("ConfigError") and "No space left on device" in error, error


def test_a_workers_malloc_choice_is_keyed_by_its_own_groups():
    """A worker's cached malloc choice was keyed as the whole population in one process (the
    same key as workers=null cpu_devices=1): the choice for 2 members on one core served 4 on
    two cores, and the reverse."""
    cfg = compose(*AXES)
    whole = population.malloc_signature(cfg)
    assert population.malloc_signature(cfg, [2]) not in (whole, population.malloc_signature(
        cfg, [1, 1]))
    assert population.malloc_signature(cfg, [2]) == population.malloc_signature(cfg, [2])


@pytest.mark.slow  # (~50 s: two workers start, each with its wandb runs)
@two_cores
def test_a_populations_wandb_group_in_workers_keeps_its_experiment(monkeypatch, tmp_path):
    """``[<experiment>_]<date>_<time>``: a worker process, without Hydra's config, named its
    members' group without the experiment (``experiment=alpha_scan_population`` in one
    process, not in workers)."""
    from _wandb import finished_wandb_file, read_wandb_run
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):  # (as the command line)
        hydra_cfg = hydra_compose("config", return_hydra_config=True)
    with open_dict(hydra_cfg):
        hydra_cfg.hydra.runtime.choices.experiment = "alpha_scan"
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(hydra_cfg)
    run_dir = tmp_path / "2026-12-07" / "17-09-19"
    expected = "alpha_scan_2026-12-07_17-09-19"
    assert population.wandb_group(run_dir) == expected  # (this process: Hydra's config)
    train_and_evaluate(compose(*SMALL, f"{POP}.seed=[0,1]", "logger=wandb", "trainer.epochs=1",
                               f"{POP}.workers=2"), run_dir)
    groups = [read_wandb_run(finished_wandb_file(d))["group"] for d in _member_dirs(run_dir)]
    assert groups == [expected, expected]
    # inside a multirun: the sweep's group, and the job's swept values in the members' names
    # (workers named the group after the job's directory, and the jobs' members alike; tester)
    from omegaconf import OmegaConf

    from snntrain import writers

    OmegaConf.set_readonly(hydra_cfg.hydra, False)
    with open_dict(hydra_cfg):
        hydra_cfg.hydra.mode = "MULTIRUN"
        hydra_cfg.hydra.sweep.dir = str(tmp_path / "sweep")
        hydra_cfg.hydra.sweeper.params = {"model.hidden": "[16],[32]"}
        hydra_cfg.hydra.overrides.task = ["model.hidden=[16]"]
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    HydraConfig.instance().set_config(hydra_cfg)
    sweep_group = writers.hydra_sweep_group()
    assert sweep_group and writers.sweep_job_overrides() == ["model.hidden=[16]"]
    job_dir = tmp_path / "sweep" / "0-model.hidden=_16_"
    train_and_evaluate(compose(*SMALL, f"{POP}.seed=[0,1]", "logger=wandb", "trainer.epochs=1",
                               f"{POP}.workers=2"), job_dir)
    runs = [read_wandb_run(finished_wandb_file(d)) for d in _member_dirs(job_dir)]
    assert [r["group"] for r in runs] == [sweep_group, sweep_group]
    assert [r["name"] for r in runs] == [f"fast_sigmoid(alpha=25.0)-seed{s}-model.hidden=[16]"
                                         for s in (0, 1)]


def test_the_worker_entry_point_without_its_arguments_is_one_line():
    """``python -m snntrain.worker --help`` (the README names the module) was an IndexError;
    seven arguments of the wrong kind, a ValueError (reviewer)."""
    import subprocess
    import sys

    for args in (["--help"], list("abcdefg")):
        res = subprocess.run([sys.executable, "-m", "snntrain.worker", *args],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and res.stderr.strip() == (
            "usage: python -m snntrain.worker RUN_DIR CORE T_START GROUPS WORKERS PARENT_PID "
            "PROGRESS_FD (a population's worker process, started by the population itself: "
            "python -m snntrain 'trainer.population...=[...]')"), args
