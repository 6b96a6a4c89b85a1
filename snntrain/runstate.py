"""Where a run is, and what the loop decides from one step's metrics.

* :class:`MetricSums`: count-weighted sums of per-step metrics over (part of) an epoch.
* :class:`RunProgress`: the one definition of a run's position, written into every checkpoint
  and read back on resume: the global ``step``, the ``epoch`` being trained (counted from 0),
  how many of its batches are done (``batch_in_epoch``), the epoch's running sums, the
  best-validation history, the last epoch record (what the summary reports) and the time the
  run has taken (its earlier attempts' up to the checkpoint it resumed from, and this one's).
  ``batch_in_epoch == steps_per_epoch`` means the epoch's batches are done but its end (means,
  evaluation, epoch record) is not: a resumed run does it next.
* :class:`DivergencePolicy`: what a non-finite step means (``trainer.on_nan``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np


class TrainingError(RuntimeError):
    """A run that stopped for a reason the user must act on (reported in one line)."""

    exit_code = 1


class Diverged(TrainingError):
    """The loss or a gradient became NaN/Inf (at ``step``, when one run's step is known)."""

    exit_code = 3

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


def failure_record(e: BaseException) -> dict[str, Any]:
    """``summary.json`` of a run that stopped with ``e``: ``diverged`` (at its step, when
    known) or ``failed``, with the error."""
    where: dict[str, Any] = {}
    if isinstance(e, Diverged) and e.step is not None:
        where = {"diverged_at_step": e.step, "steps": e.step}
    return {"status": "diverged" if isinstance(e, Diverged) else "failed",
            "error": f"{type(e).__name__}: {e}", **where}


class Preempted(TrainingError):
    exit_code = 75  # EX_TEMPFAIL: "try again"; a SLURM requeue resumes the run


# Per-step metrics that are not averaged into the epoch record.
NOT_SUMMED = ("grad_norm/",)


@dataclasses.dataclass
class MetricSums:
    """``sum_s count_s * metric_s`` per metric, and ``sum_s count_s``, over accepted steps."""

    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    count: float = 0.0

    def add(self, metrics: dict[str, float], count: float) -> None:
        for k, v in metrics.items():
            if not k.startswith(NOT_SUMMED):
                self.sums[k] = self.sums.get(k, 0.0) + v * count
        self.count += count

    def means(self, prefix: str = "") -> dict[str, float]:
        n = max(self.count, 1.0)
        return {f"{prefix}{k}": v / n for k, v in self.sums.items()}

    def to_meta(self) -> dict[str, float]:
        return {**self.sums, "count": self.count} if self.count or self.sums else {}

    @classmethod
    def from_meta(cls, meta: dict[str, float]) -> MetricSums:
        sums = dict(meta)
        return cls(sums, float(sums.pop("count", 0.0)))


# what a run's time is (summary.json; each checkpoint records them so far)
TIMES = ("wall_time_s", "train_time_s", "compile_time_s", "timed_steps")


@dataclasses.dataclass
class RunProgress:
    """A run's position and the state the loop carries between epochs (see module doc)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    epoch_sums: MetricSums = dataclasses.field(default_factory=MetricSums)
    best_val_accuracy: float | None = None
    best_val_epoch: int | None = None
    last_epoch: dict[str, Any] = dataclasses.field(default_factory=dict)  # its epoch record
    skipped_steps: int = 0  # trainer.on_nan=skip_step: updates dropped so far
    started_at: float = dataclasses.field(default_factory=time.time)  # this attempt's start
    earlier: dict[str, float] = dataclasses.field(default_factory=dict)  # :data:`TIMES` before

    def time_spent(self, runner: Any) -> dict[str, float]:
        """:data:`TIMES` of the run so far: the earlier attempts' (up to the checkpoint this
        one resumed from; a pre-empted seed reported only its last attempt) and this
        attempt's (``runner``: its ``train_s``, ``compile_s`` and ``timed_steps``)."""
        now = {"wall_time_s": time.time() - self.started_at, "train_time_s": runner.train_s,
               "compile_time_s": runner.compile_s or 0.0, "timed_steps": runner.timed_steps}
        return {k: self.earlier.get(k, 0) + v for k, v in now.items()}

    def advance(self, n: int = 1) -> None:
        self.step += n
        self.batch_in_epoch += n

    def end_epoch(self) -> dict[str, float]:
        """Close the epoch: return its train means and start the next one."""
        means = self.epoch_sums.means("train_")
        if self.skipped_steps:  # so far in the run (recorded only when some were)
            means["skipped_steps"] = self.skipped_steps
        self.epoch, self.batch_in_epoch, self.epoch_sums = self.epoch + 1, 0, MetricSums()
        return means

    def record_val(self, accuracy: float, epoch: int) -> None:
        if self.best_val_accuracy is None or accuracy > self.best_val_accuracy:
            self.best_val_accuracy, self.best_val_epoch = accuracy, epoch

    def to_meta(self, seed: int, key: Any, fingerprint: dict[str, Any],
                runner: Any = None) -> dict[str, Any]:
        """The checkpoint's meta; with the time spent so far when ``runner`` is given."""
        history: dict[str, Any] = {"best_val_accuracy": self.best_val_accuracy}
        if runner is not None:
            history.update(self.time_spent(runner))
        if self.best_val_epoch is not None:
            history["best_val_epoch"] = self.best_val_epoch
        if self.skipped_steps:
            history["skipped_steps"] = self.skipped_steps
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "seed": seed, "prng_key": np.asarray(key).tolist(), "fingerprint": fingerprint,
                "epoch_acc": self.epoch_sums.to_meta(), "history": history,
                "last_epoch": self.last_epoch}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], steps_per_epoch: int) -> RunProgress:
        history = meta.get("history") or {}
        p = cls(int(meta["step"]), int(meta["epoch"]), int(meta["batch_in_epoch"]),
                MetricSums.from_meta(meta.get("epoch_acc") or {}),
                history.get("best_val_accuracy"), history.get("best_val_epoch"),
                dict(meta.get("last_epoch") or {}), int(history.get("skipped_steps", 0)),
                earlier={k: history[k] for k in TIMES if k in history})
        if p.step != p.epoch * steps_per_epoch + p.batch_in_epoch:
            raise ValueError(f"checkpoint position is inconsistent: step {p.step} is not epoch "
                             f"{p.epoch} x {steps_per_epoch} steps + batch {p.batch_in_epoch}")
        return p


@dataclasses.dataclass
class DivergencePolicy:
    """``trainer.on_nan``: ``stop`` raises :class:`Diverged`; ``skip_step`` drops the step.

    The step itself already left parameters and optimizer state unchanged (see
    :func:`snntrain.steps.make_train_step`); this decides what the host does about it.
    """

    on_nan: str
    last_good: Any = None  # () -> str: where the newest checkpoint is, for the message
    say: Any = print

    def accept(self, step: int, metrics: dict[str, float]) -> bool:
        if metrics.pop("finite"):
            return True
        if self.on_nan == "stop" and step == 1:  # (it blamed the learning rate, which has not
            # acted yet: the loss and gradient are those of the initial parameters)
            raise Diverged(f"loss or gradient is NaN/Inf at step 1, before any update "
                           f"(loss={metrics['loss']}, grad_norm={metrics['grad_norm']}): the "
                           "initial network's, not the learning rate's; check the values that "
                           "scale the loss or the network (loss.rate_reg.weight, "
                           "model.readout_scale, the neuron's parameters) and the input",
                           step=step)
        if self.on_nan == "stop":
            where = self.last_good() if self.last_good else "no checkpoint was written yet"
            raise Diverged(f"loss or gradient became NaN/Inf at step {step} "
                           f"(loss={metrics['loss']}, grad_norm={metrics['grad_norm']}); "
                           f"{where}. Lower optimizer.lr or set trainer.on_nan=skip_step",
                           step=step)
        self.say(f"step {step}: non-finite loss/gradient, update skipped")
        return False
