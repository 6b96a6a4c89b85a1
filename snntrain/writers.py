"""Where metrics go: ``metrics.jsonl`` (always, flushed per line) and wandb (optional).

A wandb failure never stops training: the local files are the record, wandb is a mirror.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.rundir import checkpoint_dirs
from snntrain.runstate import TrainingError


def _plain(v: Any) -> Any:
    """JSON-safe scalars (numpy → Python; NaN/Inf → strings JSON can hold)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.generic, np.ndarray)):
        v = v.item() if np.ndim(v) == 0 else v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class WriteFailed(TrainingError):
    """A run record (``metrics.jsonl``, ``summary.json``) could not be written: a full disk, a
    quota, a file system gone read-only. Reported in one line (exit status 2) naming the file
    and the newest checkpoint that is intact, which a rerun resumes from."""

    exit_code = 2

    def __init__(self, path: Path, error: BaseException):
        self.path, self.error = Path(path), error
        self._message: str | None = None
        super().__init__(str(self.path))

    def __str__(self) -> str:
        # decided when first shown, after the run has closed its checkpoint manager: a save in
        # flight when the write failed has finished (or failed) by then
        if self._message is None:
            why = f"{type(self.error).__name__}: {self.error}"
            step = newest_checkpoint(self.path.parent)
            kept = (f"checkpoints up to step {step} are intact" if step is not None
                    else "no checkpoint was written yet")
            self._message = (f"writing {self.path} failed ({why}); {kept}, free space and rerun "
                             "the command to resume")
        return self._message


def newest_checkpoint(run_dir: Path) -> int | None:
    """The newest complete checkpoint step of the run (or population member) in ``run_dir``:
    ``checkpoints/<step>/``, or a population's ``checkpoints/group<g>/<step>/`` (the oldest of
    the groups' newest, so the claim holds for every member); None when there is none."""
    run_dir = Path(run_dir)
    roots = [run_dir]
    if run_dir.parent.name == "members":  # a population member: its checkpoints are the group's
        roots.append(run_dir.parent.parent)
    for root in roots:
        try:
            newest = [max(int(p.name) for p in d.iterdir() if p.name.isdigit())
                      for d in checkpoint_dirs(root)]
        except OSError:
            continue
        if newest:
            return min(newest)
    return None


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename).

    Raises :class:`WriteFailed` naming ``path`` when it cannot be written (the temporary file
    is removed, an earlier ``path`` stays as it was).
    """
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(_plain(obj), indent=2, sort_keys=True))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteFailed(path, e) from None


class MetricsFile:
    """Append-only JSON lines, one object per logged step/epoch, flushed line by line.

    On resume, :meth:`truncate_after` drops lines written after the checkpoint being resumed,
    so the file ends up identical to that of an uninterrupted run.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._f = None
        self._good = 0  # the file's length after the last complete line

    def truncate_after(self, step: int, epoch_open: bool = False) -> Path | None:
        """Keep the lines of steps up to ``step`` (but the epoch record of ``step`` when
        ``epoch_open``: the checkpoint was saved before that epoch's evaluation, which the
        resumed run records again); a line cut by a kill or a full disk (no longer JSON) is
        dropped. Done in place when only the file's end goes (no second copy: it works on a
        disk that is still nearly full). Lines that are not JSON before the file's last one
        (damaged, not cut by a kill) are kept in ``metrics.jsonl.unreadable-<time>``, whose
        path is returned (they were dropped without a word)."""
        if not self.path.exists():
            return None
        kept_aside = None
        try:
            data = self.path.read_bytes()
            lines = data.splitlines(keepends=True)
            keep, bad = [], []
            for i, line in enumerate(lines):
                try:
                    rec = json.loads(line)
                except ValueError:  # cut by a kill or a full disk (or undecodable bytes)
                    if i < len(lines) - 1 and line.strip():
                        bad.append(line if line.endswith(b"\n") else line + b"\n")
                    continue
                if isinstance(rec, dict) and rec.get("step", 0) <= step and not (
                        epoch_open and rec.get("step") == step and rec.get("split") == "epoch"):
                    keep.append(line if line.endswith(b"\n") else line + b"\n")
            if bad:
                kept_aside = self.path.with_name(
                    f"{self.path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
                kept_aside.write_bytes(b"".join(bad))
            if keep == lines[:len(keep)]:
                size = sum(map(len, keep))
                if size < len(data):
                    os.truncate(self.path, size)
                return kept_aside
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            try:
                tmp.write_bytes(b"".join(keep))
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        except OSError as e:
            raise WriteFailed(self.path, e) from None
        return kept_aside

    def epoch_records(self) -> int:
        """How many epoch records the file holds (0: no file)."""
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError:
            return 0
        return sum(1 for line in lines if b'"split": "epoch"' in line)

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line, flushed. Raises :class:`WriteFailed` naming the file
        when it cannot be written; the file is then cut back to its last complete line."""
        line = json.dumps(_plain(record), sort_keys=True) + "\n"
        try:
            if self._f is None:
                self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - for the run
                self._good = self._f.tell()
            self._f.write(line)
            self._f.flush()
            self._good = self._f.tell()
        except OSError as e:
            self._discard()
            raise WriteFailed(self.path, e) from None

    def _discard(self) -> None:
        """After a failed write: close the file, dropping what its buffer still holds (else its
        finalizer retries the flush at exit and prints a traceback), and cut the line the disk
        took part of."""
        f, self._f = self._f, None
        if f is not None:
            with contextlib.suppress(OSError, ValueError):
                f.close()  # the flush fails again, but the descriptor is closed
        with contextlib.suppress(OSError):
            if self.path.stat().st_size > self._good:
                os.truncate(self.path, self._good)

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            except OSError as e:
                self._f = None
                with contextlib.suppress(OSError):
                    os.truncate(self.path, self._good)
                raise WriteFailed(self.path, e) from None
            self._f = None


def has_wandb_key() -> bool:
    """Whether a wandb API key is configured (env var or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def offline_notice(logger: dict[str, Any], pattern: str) -> str | None:
    """The line saying that a ``mode: auto`` wandb logger runs offline (no API key here), with
    the ``wandb sync`` command for ``pattern`` (the offline run directories); else None."""
    if logger.get("mode", "auto") != "auto" or has_wandb_key():
        return None
    return f"wandb: no API key found, logging offline; upload later with `wandb sync {pattern}`"


class Wandb:
    """A wandb run that degrades to a no-op when wandb cannot start or keep going.

    When the server cannot be reached (no network), the run logs offline for a later
    ``wandb sync`` instead, and later runs of this process (a population's members) go
    offline at once rather than wait ``init_timeout_s`` each.
    """

    unreachable = False  # the server did not answer an online start in this process
    open_runs = 0  # started and not finished (a population holds many at once)

    def __init__(self, cfg: dict[str, Any], run_dir: Path, config: dict[str, Any],
                 run_id: str, say=print):
        self.run = None
        self.say = say
        mode = cfg.get("mode", "auto")
        if mode == "auto":
            notice = offline_notice(cfg, f"{run_dir / 'wandb'}/offline-run-*")
            mode = "online" if notice is None else "offline"
            if notice is not None:
                say(notice)
        self.mode = mode
        if mode == "disabled":
            return
        def start(mode: str) -> Any:
            import wandb

            (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
            return wandb.init(
                project=cfg.get("project", "snntrain"), entity=cfg.get("entity"),
                group=cfg.get("group"), name=cfg.get("name"), tags=list(cfg.get("tags") or []),
                job_type=cfg.get("job_type", "train"), config=config, dir=str(run_dir),
                id=run_id, resume="allow", mode=mode,
                reinit=cfg.get("reinit", "finish_previous"),  # create_new: several at once
                settings=wandb.Settings(init_timeout=float(cfg.get("init_timeout_s", 30)),
                                        console="off", silent=True, x_disable_stats=True),
            )

        later = f"upload later with `wandb sync {run_dir / 'wandb'}/offline-run-*`"
        if mode == "online" and Wandb.unreachable:
            mode = self.mode = "offline"
            say(f"wandb: the server did not answer earlier in this process; logging offline, "
                f"{later}")
        try:
            self.run = start(mode)
        except Exception as e:  # noqa: BLE001 - wandb must never stop a run
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            self.run = None
            # no server (no network, a firewall): keep the run for later. wandb holds the failed
            # run's id until torn down, which would end the runs other members have open.
            if mode == "online" and Wandb.open_runs == 0:
                Wandb.unreachable = True
                try:
                    import wandb

                    wandb.teardown()
                    self.run, self.mode = start("offline"), "offline"
                    say(f"wandb: could not reach the server ({why}); logging offline instead, "
                        f"{later}")
                except Exception:  # noqa: BLE001
                    self.run = None
            if self.run is None:
                say(f"wandb: could not start ({why}); continuing with local logs only")
        if self.run is not None:
            Wandb.open_runs += 1

    def _safe(self, fn, *args, **kwargs) -> None:
        if self.run is None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            self.say(f"wandb: {type(e).__name__}: {e}; continuing with local logs only")
            self.run = None
            Wandb.open_runs = max(0, Wandb.open_runs - 1)

    def log(self, record: dict[str, Any], step: int) -> None:
        self._safe(lambda: self.run.log(_plain(record), step=step))

    def log_image(self, key: str, path: Path, step: int = 0) -> None:
        def go():
            import wandb

            self.run.log({key: wandb.Image(str(path))}, step=step)

        self._safe(go)

    def summary(self, values: dict[str, Any]) -> None:
        """Set the run's summary to ``values``, after committing the last history row (which
        wandb otherwise commits at finish, over the summary: samples_per_s, epoch, split)."""

        def go():
            self.run.log({}, commit=True)
            self.run.summary.update(_plain(values))

        self._safe(go)

    def finish(self, exit_code: int = 0, timeout_s: float = 60.0) -> None:
        """Finish the run, but never wait more than ``timeout_s`` for wandb."""
        if self.run is None:
            return
        Wandb.open_runs = max(0, Wandb.open_runs - 1)
        t = threading.Thread(target=self._safe, args=(self.run.finish,),
                             kwargs={"exit_code": exit_code}, daemon=True)
        t.start()
        t.join(timeout_s)
        if t.is_alive():
            print("wandb: finish timed out; local logs are complete", file=sys.stderr)


def default_run_name(surrogate_cfg: dict[str, Any], seed: int,
                     others: Iterable[str] = ()) -> str:
    """``sigmoid(alpha=4.0)-seed0``: the surrogate, its parameters and the seed, then the
    other values that tell runs of one group apart (``-optimizer.lr=0.01``), if any."""
    params = ",".join(f"{k}={v}" for k, v in surrogate_cfg.items()
                      if k not in ("name", "normalize"))
    scaled = "-normalized" if surrogate_cfg.get("normalize") else ""
    rest = "".join(f"-{o}" for o in others)
    return f"{surrogate_cfg['name']}({params}){scaled}-seed{seed}{rest}"  # (no cut: unique)


def names_run(override: str) -> bool:
    """Whether ``key=value`` belongs in a run's wandb name after its surrogate and seed."""
    key = override.split("=", 1)[0].lstrip("+~")
    return not (key in ("seed", "surrogate", "experiment") or key.startswith(
        ("surrogate.", "hydra.", "logger", "trainer.progress", "trainer.resume")))


_INHERITED_OVERRIDES: list[str] = []  # a population worker's: its parent job's


def inherit_sweep_job_overrides(overrides: list[str]) -> None:
    """A population's worker process (no Hydra config): its parent's
    :func:`sweep_job_overrides`, which name its members' wandb runs as the parent's would."""
    _INHERITED_OVERRIDES[:] = [str(o) for o in overrides]


def sweep_job_overrides() -> list[str]:
    """The overrides of the current Hydra multirun job that name it apart from the sweep's
    other jobs in wandb (not the surrogate or seed: the name has them); [] outside one
    (a population worker's: its parent's, :func:`inherit_sweep_job_overrides`)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return list(_INHERITED_OVERRIDES)
    if hc.mode != RunMode.MULTIRUN:
        return []
    swept = _swept_keys(Path(hc.sweep.dir), hc.sweeper.get("params") or {})
    return [o for o in hc.overrides.task
            if names_run(o) and o.split("=", 1)[0].lstrip("+~") in swept]


def _swept_keys(sweep_dir: Path, sweeper_params: Any) -> set[str]:
    """The keys a sweep varies: its sweeper's ``params`` and the sweep overrides (``a=1,2``,
    ``range(...)``) of the command in ``<sweep dir>/multirun.yaml``."""
    keys = {str(k) for k in sweeper_params}
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        task = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task
        keys |= {o.key_or_group for o in
                 OverridesParser.create().parse_overrides(list(task)) if o.is_sweep_override()}
    except Exception:  # noqa: BLE001 - no multirun.yaml (another sweeper): its params only
        pass
    return keys


def wandb_run_id(run_dir: Path) -> str:
    """The run's wandb id, kept in ``wandb_id.txt`` so a resumed run continues the same run."""
    path = run_dir / "wandb_id.txt"
    if path.exists():
        return path.read_text().strip()
    import uuid

    rid = uuid.uuid4().hex[:12]
    try:
        path.write_text(rid)
    except OSError as e:
        with contextlib.suppress(OSError):
            path.unlink()
        raise WriteFailed(path, e) from None
    return rid


# keys that change how a run is shown or resumed, not what it computes
_NOT_CHANGES = ("logger.", "trainer.progress", "trainer.resume", "trainer.async_checkpointing",
                "trainer.population.workers", "trainer.population.cpu_devices")


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple]:
    """``{dotted key: (old, new)}`` of the keys whose values differ (None: absent), apart
    from those that do not change what the run computes (the logger, the progress bar,
    ``trainer.resume``, where a population's members run)."""
    from snntrain.runs import flatten

    a, b = flatten(dict(old)), flatten(dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k) and not k.startswith(_NOT_CHANGES)}


def save_config(run_dir: Path, config: dict[str, Any], say=None) -> None:
    """``<run_dir>/config.yaml``: the run's resolved config (what reports and exports read).
    With ``say`` (a resumed run), an earlier file with other values (``optimizer.lr``,
    ``trainer.epochs``: what a resume accepts) is kept as ``config.yaml.earlier-<time>`` and
    the changes said: it was replaced, so the run's record named only the last values."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / "config.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    try:
        if say is not None and (kept := _keep_earlier(path, config)) is not None:
            changed, name = kept
            if changed is None:
                say(f"the earlier config.yaml could not be read as a config; it is kept as "
                    f"{name}")
            else:
                shown = ", ".join(f"{k} {_yaml(a)} -> {_yaml(b)}"
                                  for k, (a, b) in list(changed.items())[:6])
                more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
                say(f"resumed with other settings: {shown}{more} (the earlier config.yaml is "
                    f"kept as {name})")
        OmegaConf.save(OmegaConf.create(config), tmp)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteFailed(path, e) from None


def _keep_earlier(path: Path, config: dict[str, Any]
                  ) -> tuple[dict[str, tuple] | None, str] | None:
    """The changes from ``path``'s config to ``config`` (None: it cannot be read as a config,
    a hand edit's typo: it was replaced without a trace) and the name the earlier file is kept
    under; None: no file, or the same values."""
    from omegaconf import OmegaConf

    if not path.is_file():
        return None
    try:
        old = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception:  # noqa: BLE001 - unreadable: kept as it is
        old = None
    changed = config_changes(old, config) if isinstance(old, dict) else None
    if changed == {}:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"config.yaml.earlier-{stamp}")
    n = 1
    while kept.exists():  # (two resumes in one second)
        n += 1
        kept = path.with_name(f"config.yaml.earlier-{stamp}-{n}")
    os.replace(path, kept)
    return changed, kept.name


def _yaml(v: Any) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


class RunRecorder:
    """What a run writes besides checkpoints: ``config.yaml``, ``metrics.jsonl``, wandb.

    Only the main process records (``enabled``); the others get a recorder that does nothing.
    ``logger`` is the resolved ``logger`` config group with the wandb run's ``name``, ``group``
    and ``tags`` already decided, or None for no wandb.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any], logger: dict[str, Any] | None,
                 enabled: bool = True, say=print, resumed: bool = False):
        self.run_dir, self.enabled, self.say = Path(run_dir), enabled, say
        self.metrics = MetricsFile(self.run_dir / "metrics.jsonl")
        self.wandb: Wandb | None = None
        if not enabled:
            return
        save_config(self.run_dir, config, say if resumed else None)
        if logger is not None:
            self.wandb = Wandb(logger, self.run_dir, config, wandb_run_id(self.run_dir), say)

    def resume_at(self, step: int, epoch_open: bool = False, epochs: int = 0) -> None:
        """Drop records written after ``step`` (the checkpoint being resumed), and its epoch
        record when the checkpoint holds that epoch unevaluated (``epoch_open``: saved by a
        signal on the epoch's last step; a kill after the resumed run recorded the epoch, but
        before its save, left the record twice). Says so when fewer than the ``epochs``
        closed by ``step`` have their record (the file deleted or damaged by hand)."""
        if not self.enabled:
            return
        if aside := self.metrics.truncate_after(step, epoch_open):
            n = aside.read_bytes().count(b"\n")
            self.say(f"{self.metrics.path}: {n} line{'s' if n > 1 else ''} before its end "
                     f"{'are' if n > 1 else 'is'} not JSON (damaged): kept in {aside.name}, "
                     "left out of the run's records")
        have = self.metrics.epoch_records()
        if have < epochs:  # (a deleted file: said even when no record was due; a damaged
            path = self.metrics.path  # one: nothing)
            what = (f"{path} is missing: the records it held are lost"
                    if not path.exists() else f"{path} holds {have} of the {epochs} epoch "
                    f"records up to step {step}: the missing ones are lost")
            self.say(f"{what}; training goes on from the checkpoint")

    def log(self, record: dict[str, Any]) -> None:
        if self.enabled:
            self.metrics.write(record)
            if self.wandb:
                # rows of one step merge in wandb: a train record and the epoch record logged at
                # the same step kept only the epoch's "split" (the keys are disjoint otherwise)
                self.wandb.log({k: v for k, v in record.items() if k not in ("step", "split")},
                               record["step"])

    def log_surrogate(self, surrogate: Any) -> None:
        """The surrogate's g'(x) as an image in wandb, once per run."""
        if not (self.wandb and self.wandb.run is not None):
            return
        try:
            from snntrain import plots

            png = plots.surrogate_curve_png(surrogate, self.run_dir / "surrogate_grad.png")
            self.wandb.log_image("surrogate/grad", png, step=0)
        except Exception as e:  # noqa: BLE001 - a plot must never stop a run
            self.say(f"wandb: no surrogate plot ({type(e).__name__}: {e})")

    def finish(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (never replacing a completed one) and close wandb."""
        self.metrics.close()
        if not self.enabled:
            return
        path = self.run_dir / "summary.json"
        if summary.get("status") == "completed" or not kept_summary(path, summary.get("steps")):
            write_json(path, summary)
        if self.wandb:
            self.wandb.summary(summary)  # cost, firing_rates and device as nested keys
            self.wandb.finish(exit_code=0 if summary.get("status") == "completed" else 1)


def kept_summary(path: Path, trained_to: Any) -> bool:
    """Whether the ``summary.json`` at ``path`` outlives an attempt that did not complete: it
    records a completed run and the attempt did not train past it (``trained_to``: the last
    step the attempt reached, None if unknown). A finished run resumed with more epochs and
    then pre-empted or failed said "completed" with its old numbers."""
    old = completed_summary(path)
    if old is None:
        return False
    try:
        return not int(trained_to) > int(old.get("steps") or 0)
    except (TypeError, ValueError):
        return True


def completed_summary(path: Path) -> dict[str, Any] | None:
    """The ``summary.json`` at ``path`` if it records a completed run, else None; its
    ``run_dir`` is the directory it was read from (a copy of the run's names the copy)."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(summary, dict) and summary.get("status") == "completed"):
        return None
    return {**summary, "run_dir": str(Path(path).parent.absolute())}


# ---- wandb names for sweeps ---------------------------------------------------------------


def sweep_group(sweep_dir: str | Path, prefix: str | None = None) -> str:
    """The wandb group of a Hydra sweep: its directory below ``.../multirun/`` (or its name).

    ``outputs/multirun/2025-06-01/12-00-00`` → ``2025-06-01_12-00-00``, prefixed with the
    experiment (or hparams_search) name when there is one: ``alpha_scan_2025-06-01_12-00-00``.
    """
    parts = Path(sweep_dir).parts
    tail = (
        parts[len(parts) - parts[::-1].index("multirun") :]
        if "multirun" in parts[:-1]
        else parts[-1:]
    )
    name = "_".join(tail) or "sweep"
    return (f"{prefix}_{name}" if prefix else name)[:128]


def in_multirun() -> bool:
    """Whether this is a Hydra multirun's job."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False


def hydra_sweep_group() -> str | None:
    """:func:`sweep_group` of the current Hydra multirun job; None outside a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    choices = hc.runtime.choices
    prefix = choices.get("experiment") or choices.get("hparams_search")
    return sweep_group(hc.sweep.dir, None if prefix in (None, "null") else prefix)


def run_tags(cfg: Any) -> list[str]:
    """wandb tags ``surrogate=…``, ``alpha=…`` (if any), ``normalized`` (if
    ``surrogate.normalize``), ``model=…``, ``dataset=…``, ``seed=…``."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    s, tags = c.get("surrogate") or {}, []
    tags.append(f"surrogate={s.get('name')}")
    if s.get("alpha") is not None:
        tags.append(
            f"alpha={s['alpha']:g}"
            if isinstance(s["alpha"], (int, float))
            else f"alpha={s['alpha']}"
        )
    if s.get("normalize") is True:
        tags.append("normalized")
    tags += [
        f"model={(c.get('model') or {}).get('name')}",
        f"dataset={(c.get('dataset') or {}).get('name')}",
        f"seed={c.get('seed')}",
    ]
    return [t[:64] for t in tags]
