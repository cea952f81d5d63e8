"""Seed statistics against scipy's own routines: the t interval of a mean (scipy.stats.t.interval) and Welch's
interval of a difference (scipy.stats.ttest_ind(equal_var=False).confidence_interval)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from imagenet_jax.sweep.statistics import difference_interval, mean_interval

# Final test errors (%) of three and four seeds, of the size the Fashion-MNIST ablations produce.
SEEDS_A = [10.69, 10.31, 11.02]
SEEDS_B = [11.05, 11.61, 10.97, 11.48]


def test_mean_interval_equals_scipys_t_interval():
    interval = mean_interval(SEEDS_A)
    low, high = stats.t.interval(0.95, len(SEEDS_A) - 1, loc=np.mean(SEEDS_A), scale=stats.sem(SEEDS_A))
    assert interval.n == 3 and interval.mean == pytest.approx(np.mean(SEEDS_A), abs=1e-12)
    assert (interval.low, interval.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert interval.std == pytest.approx(np.std(SEEDS_A, ddof=1), abs=1e-12)


def test_difference_interval_equals_welchs_interval_from_scipy():
    interval = difference_interval(SEEDS_B, SEEDS_A)
    reference = stats.ttest_ind(SEEDS_B, SEEDS_A, equal_var=False).confidence_interval(0.95)
    assert interval.mean == pytest.approx(np.mean(SEEDS_B) - np.mean(SEEDS_A), abs=1e-12)
    assert (interval.low, interval.high) == (pytest.approx(reference.low, abs=1e-9),
                                             pytest.approx(reference.high, abs=1e-9))
    assert interval.excludes_zero == (reference.low > 0 or reference.high < 0)


def test_a_difference_inside_seed_noise_does_not_exclude_zero_and_a_large_one_does():
    assert not difference_interval([10.5, 10.9, 10.2], SEEDS_A).excludes_zero
    assert difference_interval([13.1, 13.4, 12.9], SEEDS_A).excludes_zero


def test_one_seed_gives_a_mean_without_an_interval():
    single = mean_interval([12.5])
    assert (single.mean, single.low, single.high, single.n) == (12.5, None, None, 1)
    difference = difference_interval([12.5], SEEDS_A)
    assert difference.low is None and not difference.excludes_zero
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])
