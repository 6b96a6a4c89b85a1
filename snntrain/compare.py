"""Which configuration won a sweep, and is the difference real?

Configurations (:class:`snntrain.runs.Row`) are ranked by the sweep's *selection metric*: its
``optimize_metric`` when that is a validation metric, else ``best_val_accuracy`` — never a test
metric, so the test accuracy of the selected configuration stays an unbiased number to quote.
Every other configuration is compared with the selected one over its seeds: the difference of
the means with a 95% confidence interval from Welch's t (unequal variances, Welch–Satterthwaite
degrees of freedom; :func:`scipy.stats.ttest_ind` with ``equal_var=False``), and a verdict in
plain words: "within noise" when the interval contains 0, else "worse by 2.1 ± 0.8 points"
(± is the half-width of the interval). With fewer than two seeds on either side no claim can be
made, and the verdict says so. Each interval stands alone (no correction for comparing many
configurations with the winner).

For an alpha scan, :func:`alpha_ranges` gives the best alpha of each series and the contiguous
range of alphas around it that are within noise of it (the robustness to the steepness that
Zenke & Vogels 2021 discuss).

For accuracy against cost, :func:`pareto_front` gives the configurations no other one beats on
both (the best accuracy for at most that many synaptic operations), and
:func:`cheapest_within_noise` the cheapest configuration within noise of the selected one.

References:
  Welch 1947, "The generalization of Student's problem when several different population
  variances are involved", Biometrika 34; Zenke & Vogels 2021, "The remarkable robustness of
  surrogate gradient learning for instilling complex function in spiking neural networks",
  Neural Computation 33(4).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Sequence

import numpy as np

from snntrain.runs import Row

CONFIDENCE = 0.95
DEFAULT_METRIC = "best_val_accuracy"
METRIC_NAMES = {
    "best_val_accuracy": "best validation accuracy",
    "val_accuracy": "final validation accuracy",
    "val_loss": "final validation loss",
    "best_val_loss": "best validation loss",
}


@dataclasses.dataclass(frozen=True)
class Metric:
    """The selection metric: a ``summary.json`` key, its direction and how to print it."""

    key: str
    note: str = ""  # why this metric (e.g. the sweep's optimize_metric was a test metric)

    @property
    def higher_is_better(self) -> bool:
        return "loss" not in self.key

    @property
    def is_accuracy(self) -> bool:
        return "accuracy" in self.key

    @property
    def title(self) -> str:
        return METRIC_NAMES.get(self.key, self.key)

    @property
    def at_best_val_epoch(self) -> bool:
        """Measured at the run's best validation epoch (else at its last epoch)."""
        return self.key == "best_val_accuracy"

    def fmt(self, value: float, std: float = math.nan) -> str:
        """``97.50 ± 0.31 %`` for accuracies (fractions in the files), else ``0.1234 ± 0.0100``."""
        if math.isnan(value):
            return "—"
        if self.is_accuracy:
            text = f"{100 * value:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")
            return text + " %"
        return f"{value:.4g}" + ("" if math.isnan(std) else f" ± {std:.2g}")

    def points(self, value: float, unit: bool = True) -> str:
        """A difference: ``2.1 points`` (accuracy percentage points) or ``0.012``."""
        v = 100 * value if self.is_accuracy else value
        text = f"{v:.1f}" if abs(v) >= 0.1 or v == 0 else f"{v:.2g}"
        return text + (" points" if self.is_accuracy and unit else "")


def is_validation_metric(key: str) -> bool:
    """A validation accuracy or loss (what may select); not e.g. ``best_val_epoch``."""
    parts = key.split("_")
    return "val" in parts and "test" not in parts and parts[-1] in ("accuracy", "loss")


def selection_metric(declared: Sequence[str | None]) -> Metric:
    """The metric that selects, from the runs' ``optimize_metric`` values.

    The sweep's own metric when all runs agree on one and it is a validation metric; otherwise
    ``best_val_accuracy``, with a note saying why.
    """
    names = sorted({d for d in declared if d})
    if len(names) == 1 and is_validation_metric(names[0]):
        return Metric(names[0])
    if len(names) == 1:
        why = (
            "selecting on it would bias the number to quote"
            if names[0].split("_")[-1] in ("accuracy", "loss")
            else "it is neither an accuracy nor a loss"
        )
        note = (
            f"ranked by {METRIC_NAMES[DEFAULT_METRIC]}, not by the sweep's optimize_metric "
            f"({names[0]}): {why}"
        )
    elif names:
        note = (
            f"the runs disagree on optimize_metric ({', '.join(names)}); ranked by {DEFAULT_METRIC}"
        )
    else:
        note = ""
    return Metric(DEFAULT_METRIC, note)


@dataclasses.dataclass(frozen=True)
class Difference:
    """mean(row) − mean(reference) with its confidence interval, over seeds."""

    diff: float
    low: float
    high: float
    df: float  # Welch–Satterthwaite degrees of freedom (NaN when both sides have no spread)
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def contains_zero(self) -> bool:
        return self.low <= 0 <= self.high


def welch(x: Sequence[float], ref: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Welch's t interval for mean(x) − mean(ref); both need two values or more.

    With no spread on either side there is no interval (low, high and df NaN): two seeds
    that each gave the same count of examples say nothing of the seeds' variance.
    """
    from scipy import stats

    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    if x.size < 2 or ref.size < 2:
        raise ValueError("Welch's t needs at least two values on each side")
    diff = float(x.mean() - ref.mean())
    # (equal up to rounding: the variance of three equal 100/144 is 1e-32, not 0, and gave an
    # interval of +-3e-14 points, "worse")
    if all(tied(v, x[0]) for v in x) and all(tied(v, ref[0]) for v in ref):
        return Difference(diff, math.nan, math.nan, math.nan, confidence)
    with warnings.catch_warnings():
        # scipy warns of "catastrophic cancellation" when the values are equal up to float
        # rounding (accuracies of the same count of examples); the interval is then as narrow
        # as that spread, which is the right answer, not a failure to report.
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        res = stats.ttest_ind(x, ref, equal_var=False)
        ci = res.confidence_interval(confidence)
    return Difference(diff, float(ci.low), float(ci.high), float(res.df), confidence)


@dataclasses.dataclass
class Ranked:
    """One configuration's place in the ranking."""

    row: Row
    values: list[float]  # the selection metric of each completed seed
    rank: int | None  # 1 = selected; None: no value to rank by
    diff: Difference | None = None  # against the selected configuration
    verdict: str = ""
    tied: bool = False  # its mean equals the selected one's (up to float rounding)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan

    @property
    def within_noise(self) -> bool | None:
        """True / False against the selected one; None when no claim can be made."""
        if self.rank == 1:
            return True
        if self.diff is None or math.isnan(self.diff.df):
            return None  # (a tie with no spread over seeds was "within noise": no interval)
        return self.tied or self.diff.contains_zero


def _no_claim(n: int, n_ref: int) -> str:
    if n == 0:
        return "no completed run"
    if n_ref < n:  # (it said "1 seed" of a row of 2: the selected one's count)
        return f"the selected one has {n_ref} seed{'s' if n_ref != 1 else ''}: no claim can be made"
    return f"{n} seed{'s' if n != 1 else ''}: no claim can be made"


def verdict(diff: Difference | None, metric: Metric, n: int, n_ref: int) -> str:
    """Plain words for one comparison with the selected configuration."""
    if diff is None:
        return _no_claim(n, n_ref)
    if math.isnan(diff.df):  # (it said "worse by 0.7 points (no spread over seeds)")
        return (f"{metric.points(abs(diff.diff))} apart, but neither varies over its seeds: "
                "no interval, no claim can be made")
    if diff.contains_zero:
        return "within noise"
    worse = diff.diff < 0 if metric.higher_is_better else diff.diff > 0
    word = "worse" if worse else "better"
    return f"{word} by {metric.points(abs(diff.diff), False)} ± {metric.points(diff.half_width)}"


TIE_RTOL = 1e-12  # means closer than this (relative) are equal: float rounding, not a result


def tied(a: float, b: float) -> bool:
    """Two means equal up to float rounding (e.g. 0.2 and the mean of 0.1, 0.2, 0.3)."""
    return math.isclose(a, b, rel_tol=TIE_RTOL, abs_tol=1e-15)


def rank(rows: Sequence[Row], metric: Metric) -> list[Ranked]:
    """Rows ordered best first by the mean of ``metric`` over seeds, each compared with the first.

    Rows without a value of the metric come last, unranked. A row whose mean equals the first
    one's (:func:`tied`) keeps the table's order behind it (the pick is deterministic but
    arbitrary) and is marked ``tied``; its verdict says so.
    """
    entries = [Ranked(r, r.values(metric.key), None) for r in rows]
    valued = [e for e in entries if e.values]
    sign = -1.0 if metric.higher_is_better else 1.0
    valued.sort(key=lambda e: sign * e.mean)  # stable: ties keep the table's order
    for i, e in enumerate(valued, 1):
        e.rank = i
    if valued:
        best = valued[0]
        best.verdict = "selected"
        for e in valued[1:]:
            if e.n >= 2 and best.n >= 2:
                e.diff = welch(e.values, best.values)
            e.tied = tied(e.mean, best.mean)
            if e.tied:  # a difference of rounding is no "better by 0.0 points"
                e.verdict = "tied: the same mean as the selected one" + (
                    f" ({_no_claim(e.n, best.n)} about noise)" if e.diff is None
                    else " (no spread over seeds: no interval)" if math.isnan(e.diff.df)
                    else ""
                )
            else:
                e.verdict = verdict(e.diff, metric, e.n, best.n)
    for e in entries:
        if not e.values:
            e.verdict = "no completed run with " + metric.key
    return valued + [e for e in entries if not e.values]


# ---- alpha scans --------------------------------------------------------------------------


@dataclasses.dataclass
class AlphaRange:
    """The best alpha of one series and the alphas around it within noise of it."""

    series: str
    best: Ranked
    alphas: list[float]  # every alpha of the series with a value, sorted
    low: float | None  # the contiguous within-noise range around the best (None: no claim)
    high: float | None
    metric: Metric
    # The alphas just outside the range that could not be compared with the best (one seed,
    # or no spread over seeds on either side): the range stops there for want of seeds or
    # spread, not because they are worse.
    unclaimed: list[float] = dataclasses.field(default_factory=list)
    # The alphas of the series with no value (every seed diverged, failed, ...) next to the
    # range, with what became of their runs: the range stops there (not an edge of the scan).
    no_result: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    flat: list[float] = dataclasses.field(default_factory=list)  # (unclaimed: no spread)
    tied: list[float] = dataclasses.field(default_factory=list)  # (flat, the best's mean)

    @property
    def best_alpha(self) -> float:
        return float(self.best.row.key["alpha"])

    @property
    def claim(self) -> bool:
        return self.low is not None

    @property
    def at_edge(self) -> bool:
        """The range reaches the smallest or largest alpha scanned: it may extend beyond."""
        blocked = [a for a, _ in self.no_result]
        return self.claim and (
            self.low == self.alphas[0] and not any(a < self.low for a in blocked)
            or self.high == self.alphas[-1] and not any(a > self.high for a in blocked))

    def _why_unclaimed(self) -> str:
        flat = sum(a in self.flat for a in self.unclaimed)
        if flat == len(self.unclaimed) and all(a in self.tied for a in self.unclaimed):
            return "the same mean as the best, but no spread over seeds"
        return ("one seed" if not flat else "no spread over seeds"
                if flat == len(self.unclaimed) else "one seed, or no spread over seeds")

    def _no_result_text(self) -> str:
        return "".join(f"; α={a:g} has no completed run ({what}): the range stops there"
                       for a, what in self.no_result)

    def text(self) -> str:
        head = (
            f"{self.series}: best α = {self.best_alpha:g} "
            f"({self.metric.fmt(self.best.mean, self.best.std)}, {self.best.n} seed"
            f"{'s' if self.best.n != 1 else ''})"
        )
        if not self.claim:
            return (head + "; too few seeds to say which alphas are within noise of it"
                    + self._no_result_text())
        unclaimed = " and ".join(f"α={a:g}" for a in self.unclaimed)
        if self.low == self.high:
            i = self.alphas.index(self.low)
            blocked = [g for g, _ in self.no_result]
            worse = [a for a in self.alphas[max(i - 1, 0) : i + 2]
                     if a != self.low and a not in self.unclaimed
                     and not any(min(a, self.low) < g < max(a, self.low) for g in blocked)]
            said = " and ".join(f"α={a:g}" for a in worse)
            worse_text = f"; {said} {'is' if len(worse) == 1 else 'are'} worse" if worse else ""
            if not self.unclaimed and not self.no_result:
                worse_text = "; every neighbouring alpha is worse"
            if self.unclaimed:
                worse_text += (f"; no claim can be made about {unclaimed} next to it "
                               f"({self._why_unclaimed()})")
            if self.at_edge:  # (a one-alpha range at the edge was not marked)
                side = "smallest" if self.low == self.alphas[0] else "largest"
                worse_text += f"; it is the {side} alpha scanned: the best may lie beyond"
            return head + worse_text + self._no_result_text()
        edge = " (reaches the edge of the scan: the range may be wider)" if self.at_edge else ""
        text = head + f"; within noise for α from {self.low:g} to {self.high:g}{edge}"
        if self.unclaimed:
            text += (f"; no claim can be made about {unclaimed} next to the range "
                     f"({self._why_unclaimed()}): it may be wider")
        return text + self._no_result_text()


def alpha_ranges(rows: Sequence[Row], metric: Metric) -> list[AlphaRange]:
    """For each series (a row label without alpha) with two or more alphas: the best alpha and
    the contiguous range of alphas, in sorted order, whose Welch interval of the difference to
    the best one contains 0 (needs two seeds on both sides at each step outwards)."""
    by_series: dict[str, list[Row]] = {}
    empty: dict[str, dict[float, Row]] = {}  # the alphas with no value: the walk stops there
    for r in rows:
        if r.key.get("alpha") is not None:
            if r.values(metric.key):
                by_series.setdefault(r.series, []).append(r)
            else:
                empty.setdefault(r.series, {})[float(r.key["alpha"])] = r
    out = []
    for series, group in by_series.items():
        gaps = empty.get(series, {})
        if len({r.key["alpha"] for r in group}) < 2:
            continue
        ranked = rank(group, metric)
        best = ranked[0]
        by_alpha = sorted(ranked, key=lambda e: e.row.key["alpha"])
        alphas = [float(e.row.key["alpha"]) for e in by_alpha]
        i = by_alpha.index(best)
        low = high = None
        unclaimed: list[float] = []
        gap = functools.partial(_gap, gaps)
        lo = hi = i
        if best.n >= 2:
            while lo > 0 and by_alpha[lo - 1].within_noise and gap(alphas[lo],
                                                                   alphas[lo - 1]) is None:
                lo -= 1
            while (hi < len(by_alpha) - 1 and by_alpha[hi + 1].within_noise
                   and gap(alphas[hi], alphas[hi + 1]) is None):
                hi += 1
            low, high = alphas[lo], alphas[hi]
            unclaimed = [alphas[j] for j in (lo - 1, hi + 1)
                         if 0 <= j < len(by_alpha) and by_alpha[j].within_noise is None
                         and gap(alphas[lo if j < lo else hi], alphas[j]) is None]
        edges = (gap(alphas[lo], alphas[lo - 1] if lo > 0 else -math.inf),
                 gap(alphas[hi], alphas[hi + 1] if hi < len(alphas) - 1 else math.inf))
        no_result = [(g, _what_became(gaps[g])) for g in edges if g is not None]
        flat = [a for a, e in zip(alphas, by_alpha, strict=True)
                if a in unclaimed and e.diff is not None]  # (two seeds or more: no spread)
        tied_flat = [a for a, e in zip(alphas, by_alpha, strict=True) if a in flat and e.tied]
        out.append(AlphaRange(series, best, alphas, low, high, metric, unclaimed, no_result,
                              flat, tied_flat))
    return out


def _gap(gaps: dict[float, Row], a: float, b: float) -> float | None:
    """The alpha without a value nearest ``a`` strictly between ``a`` and ``b``, if any."""
    inside = [g for g in gaps if min(a, b) < g < max(a, b)]
    return min(inside, key=lambda g: abs(g - a)) if inside else None


def _what_became(row: Row) -> str:
    """What became of a row's runs, when none has a value: ``3 diverged``, ``1 failed``..."""
    counts = {}
    for r in row.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "no run"


# ---- accuracy against cost ----------------------------------------------------------------


def pareto_front(
    costs: Sequence[float], scores: Sequence[float], higher_is_better: bool = True
) -> list[int]:
    """Indices of the points on the Pareto front, cheapest first: those that no other point
    dominates (costs at most as much and scores at least as well, one of the two strictly).

    Walking the points by increasing cost, a point is on the front when it scores better than
    every cheaper one: the front is the best score reachable for at most that cost. Identical
    points are all on it; points with a non-finite cost or score are left out.
    """
    sign = 1.0 if higher_is_better else -1.0
    pts = sorted(
        (float(c), -sign * float(s), i)
        for i, (c, s) in enumerate(zip(costs, scores, strict=True))
        if math.isfinite(c) and math.isfinite(s)
    )  # by cost, then best score first
    front: list[int] = []
    best, at = -math.inf, None  # the best score so far and the (cost, score) that set it
    for c, neg, i in pts:
        if -neg > best:
            front.append(i)
            best, at = -neg, (c, neg)
        elif (c, neg) == at:
            front.append(i)
    return front


def cheapest_within_noise(ranked: Sequence[Ranked], costs: Sequence[float]) -> int | None:
    """Index into ``ranked`` (the output of :func:`rank`) of the configuration with the lowest
    mean cost among the selected one and those within noise of it; ``costs[i]`` is the mean
    cost of ``ranked[i]`` (NaN: unknown).

    None unless the selected configuration has a cost and at least one other configuration
    with a cost is within noise of it (otherwise there is no choice to make). Ties go to the
    better-ranked configuration.
    """
    pool = [
        i
        for i, e in enumerate(ranked)
        if e.rank is not None and e.within_noise and math.isfinite(costs[i])
    ]
    if not any(ranked[i].rank == 1 for i in pool) or len(pool) < 2:
        return None
    return min(pool, key=lambda i: (costs[i], ranked[i].rank))
