"""A rich progress bar for training: epoch, step, loss, accuracy, throughput."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Shows ``epoch e/E | step s/S | loss | acc | samples/s``; silent when disabled."""

    def __init__(self, total_steps: int, steps_per_epoch: int, enabled: bool = True):
        self.total, self.spe, self.enabled = total_steps, steps_per_epoch, enabled
        self.console = Console(stderr=True)
        self._bar = RichProgress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} acc {task.fields[acc]} "
                       "{task.fields[speed]} samples/s"),
            TimeElapsedColumn(), console=self.console, disable=not enabled, transient=False)
        self._task = None

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        self._task = self._bar.add_task("train", total=self.total, epoch="-", loss="-",
                                        acc="-", speed="-")
        return self

    def update(self, step: int, metrics: dict[str, Any]) -> None:
        fields = {"epoch": f"{min(step // max(self.spe, 1) + 1, self.total // self.spe)}"
                           f"/{self.total // max(self.spe, 1)}"}
        if "loss" in metrics:
            fields["loss"] = f"{metrics['loss']:.4f}"
        if "accuracy" in metrics:
            fields["acc"] = f"{metrics['accuracy']:.3f}"
        if "samples_per_s" in metrics:
            fields["speed"] = f"{metrics['samples_per_s']:,.0f}"
        self._bar.update(self._task, completed=step, **fields)

    def epoch_done(self, epoch: int, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        parts = [f"epoch {epoch:>3}"]
        for key, label in (("train_loss", "loss"), ("train_accuracy", "train"),
                           ("val_accuracy", "val"), ("test_accuracy", "test")):
            if key in record:
                parts.append(f"{label} {record[key]:.4f}")
        self._bar.console.print("  ".join(parts))

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The end-of-run table: final metrics and where everything was written."""
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"snntrain run {summary.get('status', '')}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("train_loss", "train_accuracy", "best_val_accuracy", "val_accuracy",
                "test_loss", "test_accuracy", "steps", "epochs", "samples_per_s",
                "compile_time_s", "wall_time_s"):
        v = summary.get(key)
        if v is not None:
            table.add_row(key, f"{v:.4f}" if isinstance(v, float) else str(v))
    for name, rate in (summary.get("firing_rates") or {}).items():
        table.add_row(f"firing rate {name}", f"{rate:.4f}")
    console.print(table)
    run_dir = summary.get("run_dir", "")
    console.print(f"written to {run_dir}: config.yaml, metrics.jsonl, summary.json, "
                  "checkpoints/, wandb/")
