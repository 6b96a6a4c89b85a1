"""Where metrics go: ``metrics.jsonl`` (always, flushed per line) and wandb (optional).

A wandb failure never stops training: the local files are the record, wandb is a mirror.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np


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


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_plain(obj), indent=2, sort_keys=True))
    os.replace(tmp, path)


class MetricsFile:
    """Append-only JSON lines, one object per logged step/epoch, flushed line by line.

    On resume, :meth:`truncate_after` drops lines written after the checkpoint being resumed,
    so the file ends up identical to that of an uninterrupted run.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._f = None

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if rec.get("step", 0) <= step:
                keep.append(line)
        self.path.write_text("".join(k + "\n" for k in keep))

    def write(self, record: dict[str, Any]) -> None:
        if self._f is None:
            self._f = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        self._f.write(json.dumps(_plain(record), sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
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
        self._safe(lambda: self.run.summary.update(_plain(values)))

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


def default_run_name(surrogate_cfg: dict[str, Any], seed: int) -> str:
    """``sigmoid(alpha=4.0)-seed0``: the surrogate, its parameters and the seed."""
    params = ",".join(f"{k}={v}" for k, v in surrogate_cfg.items()
                      if k not in ("name", "normalize"))
    scaled = "-normalized" if surrogate_cfg.get("normalize") else ""
    return f"{surrogate_cfg['name']}({params}){scaled}-seed{seed}"


def wandb_run_id(run_dir: Path) -> str:
    """The run's wandb id, kept in ``wandb_id.txt`` so a resumed run continues the same run."""
    path = run_dir / "wandb_id.txt"
    if path.exists():
        return path.read_text().strip()
    import uuid

    rid = uuid.uuid4().hex[:12]
    path.write_text(rid)
    return rid


def save_config(run_dir: Path, config: dict[str, Any]) -> None:
    """``<run_dir>/config.yaml``: the run's resolved config (what reports and exports read)."""
    from omegaconf import OmegaConf

    OmegaConf.save(OmegaConf.create(config), Path(run_dir) / "config.yaml")


class RunRecorder:
    """What a run writes besides checkpoints: ``config.yaml``, ``metrics.jsonl``, wandb.

    Only the main process records (``enabled``); the others get a recorder that does nothing.
    ``logger`` is the resolved ``logger`` config group with the wandb run's ``name``, ``group``
    and ``tags`` already decided, or None for no wandb.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any], logger: dict[str, Any] | None,
                 enabled: bool = True, say=print):
        self.run_dir, self.enabled, self.say = Path(run_dir), enabled, say
        self.metrics = MetricsFile(self.run_dir / "metrics.jsonl")
        self.wandb: Wandb | None = None
        if not enabled:
            return
        save_config(self.run_dir, config)
        if logger is not None:
            self.wandb = Wandb(logger, self.run_dir, config, wandb_run_id(self.run_dir), say)

    def resume_at(self, step: int) -> None:
        """Drop records written after ``step`` (the checkpoint being resumed)."""
        if self.enabled:
            self.metrics.truncate_after(step)

    def log(self, record: dict[str, Any]) -> None:
        if self.enabled:
            self.metrics.write(record)
            if self.wandb:
                self.wandb.log({k: v for k, v in record.items() if k != "step"}, record["step"])

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
        if not (summary.get("status") != "completed" and completed_summary(path)):
            write_json(path, summary)
        if self.wandb:
            self.wandb.summary({k: v for k, v in summary.items() if not isinstance(v, dict)})
            self.wandb.finish(exit_code=0 if summary.get("status") == "completed" else 1)


def completed_summary(path: Path) -> dict[str, Any] | None:
    """The ``summary.json`` at ``path`` if it records a completed run, else None."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "completed" else None


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
