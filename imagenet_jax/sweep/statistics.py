"""Seed statistics for sweeps: a mean with its 95% t interval, and a difference of two means with Welch's interval.

Why t and Welch: a sweep has few seeds per variant (3-5), so the normal approximation understates the interval,
and two variants need not have the same seed-to-seed spread (a plain 56-layer net varies more than a ResNet-20).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats

CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over n seeds and its two-sided confidence interval (low = high = None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    std: float | None  # sample standard deviation (n - 1 in the denominator); None when n < 2 and for differences

    @property
    def half_width(self) -> float | None:
        """(high - low) / 2, or None without an interval."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (no interval: False)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of `values` and its t-distribution confidence interval."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("mean_interval needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n, None)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std)


def difference_interval(values: Sequence[float], baseline: Sequence[float],
                        confidence: float = CONFIDENCE) -> Interval:
    """mean(values) - mean(baseline) with Welch's t interval (unequal variances; needs 2+ values on each side)."""
    a, b = mean_interval(values, confidence), mean_interval(baseline, confidence)
    difference = a.mean - b.mean
    if a.std is None or b.std is None:
        return Interval(difference, None, None, min(a.n, b.n), None)
    variance_a, variance_b = a.std ** 2 / a.n, b.std ** 2 / b.n
    standard_error = math.sqrt(variance_a + variance_b)
    if standard_error == 0.0:  # every seed gave the same number on both sides: the difference is exact
        return Interval(difference, difference, difference, min(a.n, b.n), None)
    # Welch-Satterthwaite degrees of freedom.
    dof = (variance_a + variance_b) ** 2 / (variance_a ** 2 / (a.n - 1) + variance_b ** 2 / (b.n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, dof)) * standard_error
    return Interval(difference, difference - half, difference + half, min(a.n, b.n), None)
