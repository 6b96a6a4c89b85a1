"""Reading the offline ``.wandb`` files the tests' runs leave (wandb 0.31 writes no
``files/config.yaml`` offline: run, config, summary and history live only in this file)."""

import json
import struct
import time
from pathlib import Path


def wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` file: a 7-byte header, then LevelDB-log blocks of
    32 KiB whose records carry a 7-byte header (crc32, length, type: 1 full, 2 first,
    3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb run file"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL/FIRST start a record
        if kind in (1, 4):  # FULL/LAST end it
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def finished_wandb_file(run_dir: Path, timeout_s: float = 60.0) -> Path:
    """The offline ``.wandb`` file under ``run_dir`` once it holds its exit record: wandb 0.31's
    ``run.finish()`` may return before its service has written the run (the file then holds
    only its 7-byte header for a few ms; it is complete by the time the process exits)."""
    deadline = time.monotonic() + timeout_s
    while True:
        files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
        if files and any(r.WhichOneof("record_type") == "exit"
                         for r in wandb_records(files[0])):
            return files[0]
        assert time.monotonic() < deadline, f"no finished wandb run under {run_dir}"
        time.sleep(0.05)


def read_wandb_run(run_file: Path) -> dict:
    """group, tags, config, summary and history keys of an offline wandb run."""
    out = {"config": {}, "summary": {}, "history_keys": set()}
    for r in wandb_records(run_file):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.update(group=r.run.run_group, tags=list(r.run.tags), name=r.run.display_name)
            out["config"].update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "summary":
            out["summary"].update(
                {
                    (i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                    for i in r.summary.update
                }
            )
        elif kind == "history":
            out["history_keys"] |= {i.key or i.nested_key[0] for i in r.history.item}
    return out
