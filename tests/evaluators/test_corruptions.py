"""corruptions evaluator: CE and mCE as Hendrycks & Dietterich define them, against AlexNet's published ImageNet-C
errors and against a baseline read from a workdir; a mean over fewer than the 15 is never named mCE."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.corruptions import (
    ALEXNET_ERRORS,
    Corruptions,
    alexnet_corruption_errors,
    baseline_from_workdir,
    corruption_errors,
    mean_corruption_error,
)
from imagenet_jax.robustness.corruptions import IMAGENET_C, SEVERITIES


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


def test_alexnet_errors_are_the_published_fifteen():
    assert list(ALEXNET_ERRORS) == list(IMAGENET_C)
    assert ALEXNET_ERRORS["gaussian_noise"] == 0.886428 and ALEXNET_ERRORS["jpeg_compression"] == 0.606500
    assert min(ALEXNET_ERRORS, key=ALEXNET_ERRORS.get) == "brightness"  # AlexNet's easiest: 0.564592
    assert max(ALEXNET_ERRORS, key=ALEXNET_ERRORS.get) == "impulse_noise"  # and hardest: 0.922640


def test_alexnet_ce_divides_the_mean_error_over_severities_by_alexnet_s():
    errors = {name: [0.5 * ALEXNET_ERRORS[name]] * 5 for name in IMAGENET_C}
    errors["snow"] = [0.2, 0.4, 0.6, 0.8, 1.0]
    ces = alexnet_corruption_errors(errors)
    assert ces["snow"] == pytest.approx(0.6 / 0.866816) and ces["fog"] == pytest.approx(0.5)
    assert mean_corruption_error(ces, SEVERITIES, "alexnet") == {
        "mce_alexnet": pytest.approx((14 * 0.5 + 0.6 / 0.866816) / 15)}


def test_fewer_than_fifteen_corruptions_or_five_severities_give_a_partial_mean_not_an_mce():
    ces = {name: 1.0 for name in IMAGENET_C if name != "frost"} | {"gaussian_blur": 3.0}
    assert mean_corruption_error(ces, SEVERITIES, "baseline") == {
        "partial_mean_ce_baseline": 1.0, "partial_mean_ce_baseline_count": 14.0}  # gaussian_blur is not one of 15
    all_fifteen = {name: 1.0 for name in IMAGENET_C}
    assert mean_corruption_error(all_fifteen, (1, 3), "baseline") == {
        "partial_mean_ce_baseline": 1.0, "partial_mean_ce_baseline_count": 15.0}
    assert alexnet_corruption_errors({"fog": [0.5, 0.6], "gaussian_blur": [0.1] * 5}) == {}  # AlexNet's: 5 severities


@pytest.mark.parametrize("dataset, split, class_subset, option, expected", [
    ("imagenet2012", "validation", None, "auto", True),
    ("imagenet2012", "validation", (1, 2), "auto", False),
    ("imagenet2012", "train[:1000]", None, "auto", False),
    ("fashion_mnist", "test", None, "auto", False),
    ("fashion_mnist", "test", None, True, True),
    ("imagenet2012", "validation", None, False, False),
])
def test_alexnet_normalization_is_on_for_imagenet_validation_unless_set(dataset, split, class_subset, option, expected):
    evaluator = SimpleNamespace(options={"alexnet_normalized": option}, eval_set=SimpleNamespace(
        info=SimpleNamespace(name=dataset, eval_split="validation" if dataset == "imagenet2012" else "test"),
        split=split, class_subset=class_subset))
    assert Corruptions.alexnet_normalized(evaluator) is expected
