"""imagenet_jax.report.figures: every figure is a decodable PNG of a sensible size."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imagenet_jax.report import figures
from imagenet_jax.report.data import load_run_data
from tests.report.fixtures import CALIBRATION, per_class_payload, write_workdir


def _size(png: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.size


def test_curve_keys_are_only_those_logged(tmp_path):
    run = load_run_data(write_workdir(str(tmp_path / "run")))
    assert [key for _, key, _ in figures.curve_keys([run])] == ["loss", "top1", "learning_rate", "images_per_second"]
    rows_without_lr = [{"step": 1, "split": "train", "loss": 1.0}]
    bare = load_run_data(write_workdir(str(tmp_path / "bare"), False, rows_without_lr))
    assert [key for _, key, _ in figures.curve_keys([bare])] == ["loss"]


def test_curves_against_step_and_epoch_with_compared_runs_are_pngs(tmp_path):
    run = load_run_data(write_workdir(str(tmp_path / "a")))
    other = load_run_data(write_workdir(str(tmp_path / "b")))
    for x_axis in ("step", "epoch"):
        width, height = _size(figures.curves_figure([run, other], "top1", "Top-1", "all", x_axis))
        assert width > 200 and height > 150


def test_confusion_reliability_and_samples_are_pngs():
    assert min(_size(figures.confusion_figure(per_class_payload()))) > 200
    assert min(_size(figures.reliability_figure(CALIBRATION))) > 200
    images = np.random.default_rng(0).integers(0, 255, (5, 28, 28, 1), dtype=np.uint8)
    width, height = _size(figures.samples_figure(images, ["a"] * 5, ["a", "b", "a", "b", "a"]))
    assert width > height > 50  # one row of five
