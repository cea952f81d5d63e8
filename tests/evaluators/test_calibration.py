"""calibration: ECE and reliability bins on a constructed case computed by hand."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.calibration import Calibration, bin_sums, reliability


def test_ece_of_a_constructed_case_equals_the_hand_computation():
    # Top-1 confidences 0.95, 0.95, 0.55, 0.55 (two-class softmax rows); hits 1, 0, 1, 1; plus one masked row.
    confidence = np.array([0.95, 0.95, 0.55, 0.55, 0.95])
    probabilities = np.stack([confidence, 1 - confidence], -1)
    hits = np.array([1.0, 0.0, 1.0, 1.0, 1.0])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    sums = bin_sums(jnp.asarray(probabilities), jnp.asarray(hits * weights), jnp.asarray(weights), 10)
    result = reliability(*(np.asarray(sums[key]) for key in ("bin_count", "bin_hits", "bin_confidence")))
    # Bin [0.9, 1): 2 examples, accuracy 0.5, confidence 0.95; bin [0.5, 0.6): 2, accuracy 1, confidence 0.55.
    expected = 2 / 4 * abs(0.5 - 0.95) + 2 / 4 * abs(1.0 - 0.55)
    assert result["ece"] == pytest.approx(expected, abs=1e-6)
    bins = {row["lower"]: row for row in result["bins"] if row["count"]}
    assert sorted(bins) == pytest.approx([0.5, 0.9])
    assert bins[0.9]["accuracy"] == pytest.approx(0.5) and bins[0.9]["confidence"] == pytest.approx(0.95)
    assert len(result["bins"]) == 10 and sum(row["count"] for row in result["bins"]) == 4


def test_confidence_one_falls_in_the_last_bin():
    sums = bin_sums(jnp.asarray([[1.0, 0.0]]), jnp.asarray([1.0]), jnp.asarray([1.0]), 15)
    assert np.asarray(sums["bin_count"])[-1] == 1


def test_bins_option_is_validated_with_the_key_named():
    with pytest.raises(ConfigError, match=r"config.evals.cal.bins"):
        Calibration.validate("cal", {"bins": 0})
    with pytest.raises(ConfigError, match=r"config.evals.cal.binz"):
        Calibration.validate("cal", {"binz": 3})
