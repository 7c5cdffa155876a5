"""Paired comparisons with a confidence interval: how a study decides a trend.

A trend ("A beats B") is decided from the per-seed differences of two cells that share their seeds
(the same sampled points and training seed in both), never from one difference of two means:

* the mean difference ``d̄``, its standard error ``s / √n`` and the Student-t interval
  ``d̄ ± t(1 − α/2, n − 1) · s / √n``;
* **pass** when the whole interval lies above 0 (A better), **fail** when it lies below 0,
  **undecided** when it contains 0, or when fewer than two paired seeds exist (no spread, no
  interval).

Student's t because a study has 3–5 seeds a cell: the normal quantile (1.96) would make the
interval about 2.2× too narrow at 3 seeds (t = 4.30).

A spread (the seed standard deviation of one cell, set against the paper's) gets its own interval,
:func:`sd_interval`: the χ² interval of a normal standard deviation, which is wide at 3 seeds
(about 0.5 to 6 times the sample's) — so a spread is "larger than the paper's" only when even the
interval's lower end is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

VERDICTS = ("pass", "fail", "undecided")


@dataclass(frozen=True)
class PairedDifference:
    """``mean`` of the per-seed differences A − B, its standard error ``se``, the ``confidence``
    interval ``[low, high]`` and the number ``n`` of paired seeds (nan where n < 2)."""

    mean: float
    se: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def verdict(self) -> str:
        """``pass`` (interval above 0), ``fail`` (below 0) or ``undecided``."""
        if self.n < 2 or math.isnan(self.low):
            return "undecided"
        if self.low > 0:
            return "pass"
        if self.high < 0:
            return "fail"
        return "undecided"

    def text(self, digits: int = 1) -> str:
        """e.g. ``+4.2 [+1.0, +7.4] (95 %, 3 seeds)``."""
        if self.n < 2:
            return f"{self.mean:+.{digits}f} (1 seed: no interval)" if self.n else "no paired seeds"
        return (
            f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] "
            f"({self.confidence:.0%}, {self.n} seeds)"
        )


def paired_difference(
    a: Mapping[object, float], b: Mapping[object, float], *, confidence: float = 0.95
) -> PairedDifference:
    """The paired difference A − B over the seeds (keys) both mappings hold."""
    seeds = sorted(set(a) & set(b), key=str)
    return difference_interval([float(a[s]) - float(b[s]) for s in seeds], confidence=confidence)


def sample_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1, ``math.fsum`` sums) of at least two values."""
    n = len(values)
    if n < 2:
        raise ValueError(f"a sample standard deviation needs at least 2 values, got {n}")
    mean = math.fsum(values) / n
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def difference_interval(diffs: Sequence[float], *, confidence: float = 0.95) -> PairedDifference:
    """Mean, standard error and Student-t interval of already paired differences."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = len(diffs)
    if n == 0:
        nan = float("nan")
        return PairedDifference(nan, nan, nan, nan, 0, confidence)
    if n < 2:
        nan = float("nan")
        return PairedDifference(float(diffs[0]), nan, nan, nan, n, confidence)
    mean, sd = sample_sd([float(d) for d in diffs])
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return PairedDifference(mean, se, mean - half, mean + half, n, confidence)


@dataclass(frozen=True)
class SpreadInterval:
    """Sample standard deviation ``sd`` (ddof 1) of ``n`` values and its ``confidence`` interval
    ``[low, high]`` (nan where n < 2)."""

    sd: float
    low: float
    high: float
    n: int
    confidence: float

    def against(self, reference: float) -> str:
        """``larger`` / ``smaller`` than ``reference`` when the whole interval is, else ``not separable``."""
        if self.n < 2 or math.isnan(self.low):
            return "not separable"
        if self.low > reference:
            return "larger"
        if self.high < reference:
            return "smaller"
        return "not separable"

    def text(self, digits: int = 2) -> str:
        """e.g. ``0.84 [0.44, 5.28] (95 %, 3 seeds)``."""
        if self.n < 2:
            return f"no spread ({self.n} seed{'s' if self.n != 1 else ''})"
        return f"{self.sd:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] ({self.confidence:.0%}, {self.n} seeds)"


def sd_interval(values: Sequence[float], *, confidence: float = 0.95) -> SpreadInterval:
    """The χ² interval of a normal population's standard deviation from a sample:
    ``[s·√((n−1)/χ²(1−α/2)), s·√((n−1)/χ²(α/2))]`` with n − 1 degrees of freedom."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    vals = [float(v) for v in values]
    n = len(vals)
    if n < 2:
        nan = float("nan")
        return SpreadInterval(nan, nan, nan, n, confidence)
    _, sd = sample_sd(vals)
    alpha = 1 - confidence
    upper_q = float(stats.chi2.ppf(1 - alpha / 2, n - 1))
    lower_q = float(stats.chi2.ppf(alpha / 2, n - 1))
    return SpreadInterval(sd, sd * math.sqrt((n - 1) / upper_q), sd * math.sqrt((n - 1) / lower_q), n, confidence)
