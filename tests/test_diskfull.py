"""A disk that fills up while a run writes its records: one line naming the file, exit status 2,
no traceback, the file cut back to its last complete line, and a resume that still works.

ENOSPC is simulated with a file object whose ``write``/``flush`` fail (no root, no tmpfs).
"""

from __future__ import annotations

import errno
import json
import os
import textwrap
from pathlib import Path

import pytest
from _workers import ROOT, env

from snntrain import writers
from snntrain.runstate import TrainingError

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDisk:
    """A text file that takes ``room`` more lines, then half of the next one; after that every
    ``write``/``flush``/``close`` fails with ENOSPC, as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room, self.full = f, room, False

    def write(self, s: str) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.room == 0:
            self.f.write(s[: len(s) // 2])  # the disk took part of the line
            self.f.flush()
            self.full = True
            return len(s)  # buffered: the error comes with the flush
        self.room -= 1
        return self.f.write(s)

    def flush(self) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.f.flush()

    def tell(self) -> int:
        return self.f.tell()

    def close(self) -> None:
        self.f.close()
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _full_after(monkeypatch, room: int) -> None:
    real_open = open
    monkeypatch.setattr(writers, "open", lambda *a, **k: FullDisk(real_open(*a, **k), room),
                        raising=False)


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a line cut by the full disk was left in the file"
    return [json.loads(line) for line in text.splitlines()]


def test_metrics_write_on_a_full_disk_names_the_file_and_cuts_the_line(tmp_path, monkeypatch):
    _full_after(monkeypatch, room=3)
    m = writers.MetricsFile(tmp_path / "metrics.jsonl")
    for step in (1, 2, 3):
        m.write({"step": step, "loss": 0.5})
    with pytest.raises(writers.WriteFailed) as info:
        m.write({"step": 4, "loss": 0.25})
    e = info.value
    assert isinstance(e, TrainingError) and e.exit_code == 2
    assert e.path == tmp_path / "metrics.jsonl"
    assert str(e) == (f"writing {tmp_path / 'metrics.jsonl'} failed (OSError: [Errno 28] "
                      f"{os.strerror(errno.ENOSPC)}); no checkpoint was written yet, free space "
                      "and rerun the command to resume")
    assert e.__cause__ is None and e.__suppress_context__  # `from None`: one line, no chain
    assert [r["step"] for r in _lines(m.path)] == [1, 2, 3]
    assert m._f is None  # closed: no retried flush (and traceback) when it is collected
    m.close()  # nothing left to close


def test_metrics_failure_names_the_newest_intact_checkpoint(tmp_path, monkeypatch):
    for name in ("25", "50", "75.orbax-checkpoint-tmp"):  # 75 was being written: not intact
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    _full_after(monkeypatch, room=0)
    m = writers.MetricsFile(tmp_path / "metrics.jsonl")
    with pytest.raises(writers.WriteFailed) as info:
        m.write({"step": 80})
    assert "; checkpoints up to step 50 are intact, free space and rerun the command to " \
           "resume" in str(info.value)
    assert str(tmp_path / "metrics.jsonl") in str(info.value)
    assert _lines(m.path) == []


def test_population_member_failure_names_the_group_checkpoints(tmp_path):
    for name in ("group0/40", "group0/60", "group1/40"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    member = tmp_path / "members" / "m0"
    member.mkdir(parents=True)
    e = writers.WriteFailed(member / "metrics.jsonl", ENOSPC)
    assert "checkpoints up to step 40 are intact" in str(e)  # every member's group has 40


def test_summary_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path,
                                                                            monkeypatch):
    rec = writers.RunRecorder(tmp_path, {"seed": 0}, None)
    rec.log({"step": 1, "loss": 1.0})
    (tmp_path / "summary.json").write_text('{"status": "preempted"}')
    real_write_text = Path.write_text

    def write_text(self, *a, **k):
        if self.name.endswith(".tmp"):
            real_write_text(self, '{"stat', **k)  # part of it, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(writers.WriteFailed) as info:
        rec.finish({"status": "completed", "test_accuracy": 0.5})
    path = tmp_path / "summary.json"
    assert str(info.value).startswith(f"writing {path} failed (OSError: [Errno 28] ")
    assert str(info.value).endswith("; no checkpoint was written yet, free space and rerun the "
                                    "command to resume")
    assert json.loads(path.read_text()) == {"status": "preempted"}  # the old record, whole
    assert not path.with_suffix(".json.tmp").exists()
    # recording that failure (snntrain.__main__._record_failure) on the same full disk gives
    # up quietly: a traceback there would hide the one line
    from hydra.core.hydra_config import HydraConfig

    from snntrain.__main__ import _record_failure

    class Runtime:
        output_dir = str(tmp_path)

    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: type("H", (), {
        "runtime": Runtime})))
    assert _record_failure(info.value) is False
    assert json.loads(path.read_text()) == {"status": "preempted"}
    with pytest.raises(writers.WriteFailed):  # any other record is an error
        writers.write_json(path, {"status": "failed", "error": "x"})


def test_config_yaml_on_a_full_disk_is_one_error_and_no_partial_file(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    def save(_cfg, f, *a, **k):
        Path(f).write_text("seed: ")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(OmegaConf, "save", save)
    with pytest.raises(writers.WriteFailed) as info:
        writers.save_config(tmp_path, {"seed": 0})
    assert str(info.value).startswith(f"writing {tmp_path / 'config.yaml'} failed (OSError: ")
    assert list(tmp_path.iterdir()) == []


def test_resume_drops_a_half_written_last_line_in_place(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [{"step": s, "split": "train"} for s in (1, 2, 3, 4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + '{"step": 5, "spl')
    inode = path.stat().st_ino
    assert writers.MetricsFile(path).truncate_after(3) is None  # (a cut end: nothing kept)
    assert _lines(path) == good[:3]
    assert path.stat().st_ino == inode  # cut in place: no second copy on a nearly full disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
    # a damaged line in the middle is kept aside (it was dropped without a word), and one
    # cut right before its newline
    path.write_text('{"step": 1}\n{"step": 2, "x\n{"step": 3}\n{"step": 4}')
    aside = writers.MetricsFile(path).truncate_after(10)
    assert _lines(path) == [{"step": 1}, {"step": 3}, {"step": 4}]
    assert aside.name.startswith("metrics.jsonl.unreadable-")
    assert aside.read_text() == '{"step": 2, "x\n'
    m = writers.MetricsFile(path)
    m.write({"step": 5})
    m.close()
    assert [r["step"] for r in _lines(path)] == [1, 3, 4, 5]


RUN_WITH_A_FULL_DISK = textwrap.dedent("""
    import errno, os, sys
    from snntrain import writers

    ROOM = int(sys.argv[1])

    class FullDisk:
        def __init__(self, f):
            self.f, self.full = f, False
        def write(self, s):
            global ROOM
            if ROOM == 0:
                self.f.write(s[: len(s) // 2]); self.f.flush(); self.full = True
                return len(s)
            ROOM -= 1
            return self.f.write(s)
        def flush(self):
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.f.flush()
        def tell(self):
            return self.f.tell()
        def close(self):
            self.f.close()
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_open = open
    writers.open = lambda *a, **k: FullDisk(real_open(*a, **k))
    sys.argv = ["snntrain", *sys.argv[2:]]
    from snntrain.__main__ import main
    main()
""")


@pytest.mark.slow
def test_cli_full_disk_during_metrics_is_one_line_and_resumes(tmp_path):
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    args = ["logger=none", "trainer.progress=false", "model.hidden=[32]", "T=6",
            "trainer.batch_size=64", "trainer.epochs=2", "trainer.log_every=1",
            "trainer.checkpoint_every=5", f"hydra.run.dir={run_dir}"]
    script = tmp_path / "full_disk.py"
    script.write_text(RUN_WITH_A_FULL_DISK)

    def run(room: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), str(room), *args], cwd=ROOT,
                              env=env(1), capture_output=True, text=True, timeout=300)

    p = run(room=7)  # lines 1..7 fit, the 8th is cut
    metrics = run_dir / "metrics.jsonl"
    assert p.returncode == 2, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "Error executing job" not in p.stderr
    steps = sorted(int(d.name) for d in (run_dir / "checkpoints").iterdir() if d.name.isdigit())
    assert steps and steps[-1] == 5
    assert p.stderr.strip().splitlines() == [
        f"snntrain: error: writing {metrics} failed (OSError: [Errno 28] "
        f"{os.strerror(errno.ENOSPC)}); checkpoints up to step 5 are intact, free space and "
        "rerun the command to resume"]
    assert [r["step"] for r in _lines(metrics)] == list(range(1, 8))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and str(metrics) in summary["error"]

    p = run(room=10_000)  # space freed: the rerun resumes from step 5
    assert p.returncode == 0, p.stderr[-3000:]
    records = _lines(metrics)
    train_steps = [r["step"] for r in records if r.get("split") == "train"]
    assert train_steps == list(range(1, train_steps[-1] + 1))  # no gap, no repeat
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_an_abandoned_saves_stragglers_print_nothing(tmp_path):
    """Fault B's noise, without a full disk: a TensorStore future awaited in an event loop that
    was closed before it completed (as orbax's loop is after a failed save) reports "Event loop
    is closed" through sys.unraisablehook, and asyncio reports the pending task when it is
    collected; a run that writes checkpoints drops both, and nothing else."""
    from _workers import python

    p = python(textwrap.dedent(f"""
        import asyncio, gc, logging, sys
        import tensorstore as ts
        from snntrain.checkpoint import Checkpoints

        logging.basicConfig()
        ckpts = Checkpoints({str(tmp_path / "checkpoints")!r})
        promise, future = ts.Promise.new()

        async def orbax_write():  # named like the tasks orbax leaves behind
            await future

        async def save():
            asyncio.ensure_future(orbax_write())
            await asyncio.sleep(0.01)

        loop = asyncio.new_event_loop()
        loop.run_until_complete(save())
        loop.close()
        promise.set_result(1)  # -> loop.call_soon_threadsafe on the closed loop
        gc.collect()
        ckpts.abandon()
        class Kept:
            def __del__(self):
                raise ValueError("kept")

        Kept()  # an unraisable exception of another kind
        # a corrupt checkpoint's restore: orbax's other array reads, never awaited, fail as
        # they are collected (hundreds of traceback lines after the one-line report)
        class Wait:
            def __await__(self):
                yield
        src = ("async def _read_array_index_and_device_put(wait):\\n"
               "    try:\\n        await wait\\n    except BaseException:\\n"
               "        raise Exception('Encountered error while reading array index')\\n")
        ns = {{}}
        exec(compile(src, "/site-packages/orbax/checkpoint/serialization.py", "exec"), ns)
        read = ns["_read_array_index_and_device_put"](Wait())
        read.send(None)
        del read
        gc.collect()
        print("done")
    """))
    assert p.stdout.strip() == "done"
    for noise in ("Event loop is closed", "call_soon_threadsafe", "Task was destroyed",
                  "Encountered error while reading array index"):
        assert noise not in p.stderr, p.stderr
    assert "ValueError: kept" in p.stderr  # other unraisable exceptions still show


def test_resume_says_where_a_damaged_metrics_line_is_kept(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n\xff{"step": 2}\n{"step": 3}\n')
    said = []
    rec = writers.RunRecorder(tmp_path, {"seed": 0}, None, say=said.append)
    rec.resume_at(3)
    aside = next(tmp_path.glob("metrics.jsonl.unreadable-*"))
    assert said == [f"{tmp_path / 'metrics.jsonl'}: 1 line before its end is not JSON "
                    f"(damaged): kept in {aside.name}, left out of the run's records"]
    assert _lines(tmp_path / "metrics.jsonl") == [{"step": 1}, {"step": 3}]


def test_resume_says_lost_records_only_when_records_were_due(tmp_path):
    """A population group resumed at step 8 said "no metrics.jsonl, so the records before step
    8 are lost" for members that had logged nothing yet (no epoch closed, trainer.log_every
    10): their records were complete."""
    said = []
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    writers.RunRecorder(tmp_path / "a", {"seed": 0}, None, say=said.append).resume_at(8, epochs=0)
    assert said == []
    writers.RunRecorder(tmp_path / "b", {"seed": 0}, None, say=said.append).resume_at(30, epochs=1)
    assert said == [f"{tmp_path / 'b' / 'metrics.jsonl'} is missing: the records it held are "
                    "lost; training goes on from the checkpoint"]
