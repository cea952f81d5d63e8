"""corruptions evaluator: mCE as Hendrycks & Dietterich define it, and the baseline read from a workdir."""

from __future__ import annotations

import json

import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.corruptions import baseline_from_workdir, corruption_errors


def test_mce_is_the_mean_of_summed_errors_over_summed_baseline_errors():
    errors = {"gaussian_noise": [0.2, 0.4], "contrast": [0.1, 0.3]}
    baseline = {"gaussian_noise": [0.4, 0.8], "contrast": [0.2, 0.2]}
    ces, mce = corruption_errors(errors, baseline)
    assert ces == pytest.approx({"gaussian_noise": 0.6 / 1.2, "contrast": 0.4 / 0.4})
    assert mce == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ConfigError, match="contrast"):
        corruption_errors(errors, {"gaussian_noise": [0.4, 0.8]}, "c")


def test_baseline_errors_come_from_the_last_line_of_the_set(tmp_path):
    lines = [{"step": 1, "split": "c", "pixelate_1_top1": 0.1, "pixelate_3_top1": 0.2},
             {"step": 2, "split": "train", "loss": 1.0},
             {"step": 2, "split": "c", "pixelate_1_top1": 0.7, "pixelate_3_top1": 0.4}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert baseline_from_workdir(str(tmp_path), "c", ("pixelate",), (1, 3)) == {"pixelate": pytest.approx([0.3, 0.6])}
    with pytest.raises(ConfigError, match="config.evals.d.baseline_workdir"):
        baseline_from_workdir(str(tmp_path), "d", ("pixelate",), (1, 3))
