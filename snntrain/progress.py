"""The console side of a run: a rich progress bar while it trains, a summary when it ends.

The bar reads ``epoch e/E ━━━ s/S loss … acc … 12,345 samples/s ETA 0:01:02 0:00:41`` (the
last is the time elapsed). Until the first step has compiled it says ``compiling…``;
throughput and ETA are measured from the steps completed after that (wall time, evaluation
included), so neither shows the compile time nor the spike of the first step after it.

A population's worker processes (:mod:`snntrain.workers`) draw no bar of their own: each
sends its bar's fields to the parent (:func:`relay_to`), whose :class:`WorkerBars` shows one
bar per worker and prints the workers' lines above them.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from snntrain.rundir import LOCK_NAME


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (pytest and
    notebooks replace it)."""

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def console_notes() -> None:
    """snntrain's notes (the ``INFO`` records of its ``logging`` loggers: binning, caching,
    decoding, downloads) as ``snntrain: <note>`` lines on stderr, apart from the root logger
    that Hydra formats as ``[<time>][HYDRA] ...``. For the command-line entry points; as a
    library snntrain adds no handler."""
    logger = logging.getLogger("snntrain")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("snntrain: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # a handler that cannot write (wandb's log files on a full disk) printed a "--- Logging
    # error ---" traceback for every record, dozens under the run's own one-line error
    logging.raiseExceptions = False


COMPILING = "compiling…"
MIN_RATE_S = 0.5  # seconds after compiling before the bar shows a rate
RELAY_S = 0.25  # a worker sends its bar at most this often (and at its last step)
_relay: Any = None  # a worker process's channel to its parent's bars (relay_to)


def relay_to(stream: Any) -> None:
    """Send the fields of every labelled :class:`Progress` bar (a population worker's) as
    JSON lines to ``stream`` (its parent's :class:`WorkerBars` draws them); writes to a
    reader that is gone are dropped."""
    global _relay
    _relay = stream


def _send(fields: Mapping[str, Any]) -> None:
    try:
        _relay.write(json.dumps(fields) + "\n")
        _relay.flush()
    except (OSError, ValueError):  # the parent is gone (its SIGTERM comes: checkpoint first)
        pass


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _bars(console: Console, enabled: bool, *lead: str) -> RichProgress:
    """Rich bars ``<lead columns> ━━━ s/S <status> <elapsed>`` (in a log, not a terminal,
    at least 160 columns wide: 80 cut the step counts and times)."""
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return RichProgress(*(TextColumn(text) for text in lead), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                        console=console, disable=not enabled, transient=False)


class Progress:
    """Shows ``epoch e/E | step s/S | loss | acc | samples/s | ETA``; no bar when disabled.

    Call :meth:`compiled` once the first step has finished (else the first :meth:`update` past
    the starting step counts as that); ``batch_size`` lets the bar measure samples/s itself
    (otherwise it shows the ``samples_per_s`` it is given, from the second update on).
    """

    def __init__(
        self,
        total_steps: int,
        steps_per_epoch: int,
        enabled: bool = True,
        batch_size: int | None = None,
        epoch_lines: bool | None = None,
        label: str = "",
    ):
        self.total, self.spe, self.enabled = total_steps, max(steps_per_epoch, 1), enabled
        self.label = label  # starts each epoch line (a population worker's group)
        # the one-line epoch summaries also print without the bar (trainer.progress=false: a
        # log file), but not on a multi-host run's other processes
        self.epoch_lines = enabled if epoch_lines is None else epoch_lines
        self.batch_size = batch_size
        self.console = Console(stderr=True)
        self._bar = _bars(self.console, enabled, "[bold]epoch {task.fields[epoch]}")
        self._task = None
        self._start: int | None = None  # the step the bar started at (resume: not 0)
        self._compiled: tuple[int, float] | None = None  # (step, time) when compiling ended
        self._updates_after_compile = 0
        self._relayed = -math.inf  # when the bar was last sent to the parent (a worker's)
        self.fields = {"loss": "-", "acc": "-", "speed": "-", "eta": "-"}

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        self._task = self._bar.add_task(
            "train",
            total=self.total,
            epoch=self._epoch(0),
            status=COMPILING if self.enabled else "",
        )
        return self

    def compiled(self, step: int | None = None, now: float | None = None) -> None:
        """The first step has compiled and finished; ``step`` is the step count after it.

        Throughput and ETA are measured from here."""
        if self._compiled is None:
            step = step if step is not None else (self._start or 0) + 1
            self._compiled = (step, time.time() if now is None else now)
            if self.enabled and self._task is not None:
                self._bar.update(self._task, status=self._text())

    def _text(self) -> str:
        f = self.fields
        return f"loss {f['loss']} acc {f['acc']} {f['speed']} samples/s ETA {f['eta']}"

    def _epoch(self, step: int) -> str:
        epochs = max(self.total // self.spe, 1)
        return f"{min(step // self.spe + 1, epochs)}/{epochs}"

    def status(self, step: int, metrics: Mapping[str, Any], now: float | None = None) -> str:
        """The text after the bar at ``step`` (remembers loss, accuracy, speed and ETA)."""
        now = time.time() if now is None else now
        if self._start is None:
            self._start = step
        if self._compiled is None and step > self._start:
            self.compiled(step, now)  # no compiled() call: the first update after a step
            self._updates_after_compile = 1  # this one carried the spike; the next may show
        if self._compiled is None:
            return COMPILING
        f = self.fields
        for key, alt, name in (("loss", "train_loss", "loss"),
                               ("accuracy", "train_accuracy", "acc")):
            v = metrics.get(key, metrics.get(alt))
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                # a huge loss (a diverging member) in 3 significant digits, not 34 characters
                f[name] = f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
        step0, t0 = self._compiled
        # not before MIN_RATE_S: the steps queued while the first compiled finish at once
        # (665,597 samples/s for a moment, then 756)
        if step > step0 and now - t0 >= MIN_RATE_S:
            rate = (step - step0) / (now - t0)  # steps/s since compiling, evaluation included
            f["eta"] = _clock((self.total - step) / rate) if step < self.total else "0:00:00"
            if self.batch_size:
                f["speed"] = f"{rate * self.batch_size:,.0f}"
            elif self._updates_after_compile > 0:  # not the first: it may hold the spike
                v = metrics.get("samples_per_s")
                if isinstance(v, (int, float)) and math.isfinite(v):
                    f["speed"] = f"{v:,.0f}"
            self._updates_after_compile += 1
        return self._text()

    def update(self, step: int, metrics: dict[str, Any]) -> None:
        if _relay is not None and self.label:  # a worker's: the parent draws it
            now = time.time()
            status = self.status(step, metrics, now)
            if now - self._relayed >= RELAY_S or step >= self.total or status == COMPILING:
                self._relayed = now
                _send({"label": self.label, "step": step, "total": self.total,
                       "epoch": self._epoch(step), "status": status})
            return
        if not self.enabled or self._task is None:
            return
        self._bar.update(
            self._task, completed=step, epoch=self._epoch(step), status=self.status(step, metrics)
        )

    def epoch_done(self, epoch: int, record: Mapping[str, Any], extra: str = "") -> None:
        """Print the line of epoch ``epoch`` (counted from 1), then ``extra``."""
        if not self.epoch_lines:
            return
        parts = [f"{self.label}: epoch {epoch:>3}" if self.label else f"epoch {epoch:>3}"]
        for key, label in (
            ("train_loss", "loss"),
            ("train_accuracy", "train"),
            ("val_accuracy", "val"),
            ("test_accuracy", "test"),
        ):
            if isinstance(record.get(key), (int, float)):
                parts.append(f"{label} {record[key]:.4f}")
        if extra:
            parts.append(extra)
        self._bar.console.print("  ".join(parts), soft_wrap=True, highlight=False, markup=False,
                                emoji=False)

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)


class WorkerBars:
    """The parent's console while a population trains in worker processes: a bar per worker
    (``group 1+3  epoch e/E ━━━ s/S  loss … acc … samples/s ETA …``, from the fields each
    relays: :func:`relay_to`) and, above them, the lines the workers print, as they come.
    Without bars (``trainer.progress=false``) the lines alone."""

    def __init__(self, workers: int, enabled: bool = True):
        self.console = Console(stderr=True)
        self._bars = _bars(self.console, enabled, "[bold]{task.description}",
                           "epoch {task.fields[epoch]}")
        self._tasks = [self._bars.add_task(f"worker {w + 1}", total=None, epoch="-",
                                           status="starting…") for w in range(workers)]

    def __enter__(self) -> WorkerBars:
        self._bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for task in self._tasks:  # (a worker that never trained: no bar left behind)
            if self._bars.tasks[task].total is None:
                self._bars.update(task, visible=False)
        self._bars.__exit__(*exc)

    def line(self, text: str) -> None:
        """A line a worker printed."""
        self.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)

    def relayed(self, worker: int, text: str) -> None:
        """A line of worker ``worker``'s bar fields (JSON; anything else is ignored)."""
        try:
            f = json.loads(text)
            self._bars.update(self._tasks[worker], description=str(f["label"]),
                              total=int(f["total"]), completed=int(f["step"]),
                              epoch=str(f["epoch"]), status=str(f["status"]))
        except (ValueError, KeyError, TypeError, IndexError):
            pass


# ---- the end of a run ---------------------------------------------------------------------

RUN_FILES = (
    "config.yaml",
    ".hydra",
    "metrics.jsonl",
    "summary.json",
    "checkpoints",
    "surrogate_grad.png",
    "wandb",
)


def written_files(run_dir: str | Path) -> list[str]:
    """The files a run wrote that exist in ``run_dir``, directories with a trailing ``/``:
    the known ones in a fixed order, then any others (logs), sorted; not the run's lock file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    present = {p.name: p.is_dir() for p in run_dir.iterdir()}
    names = [n for n in RUN_FILES if n in present]
    names += sorted(n for n in present
                    if n not in RUN_FILES and n != LOCK_NAME and not n.endswith(".tmp"))
    return [n + ("/" if present[n] else "") for n in names]


def what_ran(summary: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> str:
    """``FastSigmoid(alpha=25.0) · model mlp [64] · digits · T=25 · seed 0``."""
    config = config or {}
    model = config.get("model") or {}
    dataset = str(summary.get("dataset") or (config.get("dataset") or {}).get("name") or "?")
    if summary.get("population"):  # a population's summary: its members, not the base config
        n, seeds = summary["population"], summary.get("best_seeds") or 0
        best = summary.get("best_configuration")
        # (the values below are the best configuration's means over its seeds: "best
        # <member>" read as that member's own)
        best = (f"best {summary.get('best_member') or '-'}" if seeds < 2 or not best else
                f"{seeds} seeds of one configuration (their means below)"
                if best.startswith("(") else f"best {best} (the mean of its {seeds} seeds below)")
        parts = [f"population of {n} member{'s' * (n != 1)}, {summary.get('completed', 0)} "
                 f"completed, {best}"]
    else:
        parts = [str(summary.get("surrogate") or (config.get("surrogate") or {}).get("name",
                                                                                      "?"))]
    if model:
        size = model.get("hidden") or model.get("channels")
        parts.append(f"model {model.get('name', '?')}" + (f" {list(size)}" if size else ""))
    parts.append(dataset.split(":")[0])
    if config.get("T") is not None:
        parts.append(f"T={config['T']}")
    if config.get("seed") is not None and not summary.get("population"):
        parts.append(f"seed {config['seed']}")
    return " · ".join(parts)


def _config_of(run_dir: str) -> dict[str, Any]:
    from snntrain.runs import load_config

    try:
        return load_config(run_dir) if run_dir else {}
    except Exception:  # noqa: BLE001 - a summary must print even without a readable config
        return {}


class _SummaryConsole(Console):
    """A console that, when its reader has gone (``python -m snntrain ... | head``), goes
    quiet instead of rich's ``SystemExit(1)``: the run has finished, and what follows (a
    population's report) must still be written."""

    def on_broken_pipe(self) -> None:
        from snntrain.report import silence_stdout

        silence_stdout()
        self.quiet = True


def print_summary(
    summary: dict[str, Any],
    console: Console | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """The end-of-run summary: what ran, the final metrics (with the test split's synaptic
    operations and energy per example from ``summary["cost"]``), and where its files are.

    ``config`` (plain containers) names the model, T and seed; by default it is read from
    ``<run_dir>/config.yaml``. Paths are printed unwrapped (one line each, also in SLURM logs),
    and only files that exist are listed.
    """
    from rich.table import Table

    console = console or _SummaryConsole()
    run_dir = str(summary.get("run_dir", ""))
    config = config if config is not None else _config_of(run_dir)
    console.print(
        f"snntrain run {summary.get('status', '')}: {what_ran(summary, config)}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "train_loss",
        "train_accuracy",
        "best_val_accuracy",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
        "steps",
        "epochs",
        "samples_per_s",
        "compile_time_s",
        "wall_time_s",
    ):
        v = summary.get(key)
        if v is not None:
            table.add_row(key, f"{v:.4f}" if isinstance(v, float) else str(v))
        elif key == "samples_per_s" and key in summary:
            # (the only step compiled, or a resume trained none)
            table.add_row(key, "not measured (no step timed this attempt)")
    for name, rate in (summary.get("firing_rates") or {}).items():
        table.add_row(f"firing rate {name}", f"{rate:.4f}")
    cost = summary.get("cost") or {}
    ops = [cost.get(k) for k in ("synops/total/acs", "synops/total/macs")]
    ops = [v for v in ops if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if ops:  # effective synaptic operations: accumulates + multiply-accumulates
        table.add_row("synaptic ops / example (test)", f"{sum(ops):,.0f}")
    energy = cost.get("energy_uj")
    if isinstance(energy, (int, float)) and not isinstance(energy, bool):
        table.add_row("energy µJ / example (test)", f"{energy:#.4g}")  # 2.000, not 2
    console.print(table)
    if run_dir:
        files = written_files(run_dir)
        console.print(f"run directory: {run_dir}", soft_wrap=True, highlight=False, markup=False)
        if files:
            console.print(
                f"written: {', '.join(files)}", soft_wrap=True, highlight=False, markup=False
            )
