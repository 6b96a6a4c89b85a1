"""Hydra hooks: the sweep report at the end of every multirun, and the check for the sweep extra.

:class:`SweepReport` (``conf/hydra/callbacks/report.yaml``, on by default) writes the report of
a multirun into ``<sweep dir>/report/`` (:func:`snntrain.report.make_report`) and prints the
verdict and the path of ``index.html``. It runs in Hydra's ``on_multirun_end``, and also at
exit when the multirun ended early (a failed job makes Hydra's basic sweeper raise after the
batch, so ``on_multirun_end`` never comes). A failing report never fails the sweep: it prints
one line saying how to make the report by hand.

:func:`missing_sweep_extra` tells, before Hydra composes anything, that an override needs the
optional ``sweep`` extra (the Optuna sweeper, the submitit launcher) that is not installed;
:func:`missing_slurm`, that a SLURM launcher was picked on a machine without SLURM.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency; keep the module importable
    Callback = object  # type: ignore[misc,assignment]

SWEEP_EXTRA = "pip install 'snntrain[sweep]' (in a checkout: pip install -e '.[sweep]')"
# override prefix -> (what it needs, the module the plugin provides)
NEEDS_EXTRA = {
    "hparams_search=optuna": ("the Optuna sweeper", "hydra_plugins.hydra_optuna_sweeper"),
    "hydra/sweeper=optuna": ("the Optuna sweeper", "hydra_plugins.hydra_optuna_sweeper"),
    "hydra/launcher=submitit": ("the submitit launcher", "hydra_plugins.hydra_submitit_launcher"),
    "hydra/launcher=slurm": ("the submitit launcher", "hydra_plugins.hydra_submitit_launcher"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_sweep_extra(argv: Sequence[str]) -> str | None:
    """A one-line message when an override in ``argv`` needs the uninstalled ``sweep`` extra.

    ``hparams_search=optuna``, ``hydra/sweeper=optuna``, ``hydra/launcher=submitit_*`` and our
    ``hydra/launcher=slurm_*`` configs need it; None when nothing is missing.
    """
    for arg in argv:
        override = arg.lstrip("+~").removeprefix("override ")
        for prefix, (what, module) in NEEDS_EXTRA.items():
            if override.startswith(prefix) and not _installed(module):
                return f"{override} needs {what}, which is not installed: {SWEEP_EXTRA}"
    return None


SLURM_LAUNCHERS = ("hydra/launcher=submitit_slurm", "hydra/launcher=slurm")


def missing_slurm(argv: Sequence[str]) -> str | None:
    """A one-line message when a multirun's ``argv`` picks a SLURM launcher on a machine
    without SLURM: submitit's executor needs ``srun`` on the PATH (it raised "Could not detect
    "srun"" in a 26-line traceback, after the sweep directory was made); None otherwise."""
    from snntrain.paths import multirun_requested

    if not multirun_requested(argv):
        return None  # (a single run uses no launcher)
    for arg in argv:
        override = arg.lstrip("+~").removeprefix("override ")
        if override.startswith(SLURM_LAUNCHERS) and shutil.which("srun") is None:
            return (f"{override} needs a SLURM cluster (submitit found no srun on this "
                    "machine's PATH): run the sweep on the cluster's login node, or drop "
                    "hydra/launcher to run its jobs here")
    return None


def guard_optuna(argv: Sequence[str]) -> None:
    """An Optuna search whose every trial failed ended in a traceback (Optuna's "No trials are
    completed yet." from the plugin's ``study.best_trial``) after each job had printed its
    one-line reason; with ``optuna`` in ``argv`` the plugin's sweep now ends it in one line
    and status 2, after the report (:class:`SweepReport`, at exit)."""
    if not any("optuna" in a for a in argv):
        return
    try:
        from hydra_plugins.hydra_optuna_sweeper import _impl
    except ImportError:
        return
    sweep = _impl.OptunaSweeperImpl.sweep
    if getattr(sweep, "snntrain_guarded", False):
        return

    def guarded(self: Any, arguments: list[str]) -> None:
        try:
            return sweep(self, arguments)
        except ValueError as e:
            if "No trials are completed" not in str(e):
                raise
            _say("snntrain: error: no trial of the Optuna search completed (each failed job "
                 "printed its reason above; the sweep report lists them)", True)
            sys.exit(2)

    guarded.snntrain_guarded = True  # type: ignore[attr-defined]
    _impl.OptunaSweeperImpl.sweep = guarded


def _say(line: str, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)


def write_sweep_report(sweep_dir: str | Path, say=_say) -> Path | None:
    """Write ``<sweep_dir>/report/`` and print its verdict and path; never raises.

    Returns the report directory, or None when there was nothing to report or it failed.
    """
    sweep_dir = Path(sweep_dir)
    try:
        from snntrain.report import make_report

        out = make_report([sweep_dir], sweep_dir / "report")
        verdict = (out / "verdict.txt").read_text().strip()
    except FileNotFoundError:
        say(f"snntrain: no finished runs under {sweep_dir}, so no sweep report", True)
        return None
    except Exception as e:  # noqa: BLE001 - a report must never fail the sweep
        first = str(e).splitlines()[0][:200] if str(e) else ""
        say(
            f"snntrain: could not write the sweep report ({type(e).__name__}: {first}); "
            f"make it with `python -m snntrain.report {sweep_dir}`",
            True,
        )
        return None
    say("")
    say(verdict)
    say(f"report: {(out / 'index.html').resolve()}")
    return out


_REPORTS: list[SweepReport] = []


def cancel_reports() -> None:
    """No report at exit for the multiruns started in this process (one refused at its start,
    :func:`snntrain.startup.fail`)."""
    for report in _REPORTS:
        report._sweep_dir = None


class SweepReport(Callback):
    """Hydra callback: the sweep report at the end of a multirun (see the module docstring)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._sweep_dir: Path | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if not self.enabled:
            return
        self._sweep_dir = self._dir(config)
        _REPORTS.append(self)
        atexit.register(self._finish)  # a multirun that raises never reaches on_multirun_end

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.enabled and self._sweep_dir is None:
            self._sweep_dir = self._dir(config)
        sweep_dir = self._sweep_dir or self._dir(config)
        self._finish()
        failed = failed_jobs(sweep_dir) if sweep_dir is not None else []
        if failed:  # the jobs went on past them (snntrain.__main__._failed); the sweep did not
            _say(f"snntrain: error: {len(failed)} job(s) of the sweep failed ("
                 f"{', '.join(d.name for d in failed[:3])}{', ...' if len(failed) > 3 else ''});"
                 " the sweep report lists them with their reasons", True)
            sys.exit(2)

    def _finish(self) -> None:
        sweep_dir, self._sweep_dir = self._sweep_dir, None  # once per multirun
        if sweep_dir is not None:
            write_sweep_report(sweep_dir)

    @staticmethod
    def _dir(config: Any) -> Path | None:
        try:
            return Path(str(config.hydra.sweep.dir))
        except Exception:  # noqa: BLE001 - no sweep dir: nothing to report
            return None


def failed_jobs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep whose ``summary.json`` says ``failed`` (not ``diverged``:
    a loss that blew up at some alpha is a result of the sweep, listed in its report)."""
    out = []
    for d in sorted(Path(sweep_dir).glob("*/summary.json")):
        try:
            if json.loads(d.read_text()).get("status") == "failed":
                out.append(d.parent)
        except (OSError, ValueError, AttributeError):
            continue
    return out
