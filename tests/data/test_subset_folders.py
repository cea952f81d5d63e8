"""`prepare --export_folder`: classes of Fashion-MNIST written as an image folder that loads as a folder dataset
with exactly those classes, the requested counts and unchanged pixels."""

from __future__ import annotations

import numpy as np
import pytest

from imagenet_jax import prepare
from imagenet_jax.data import pipeline
from imagenet_jax.data.subset_folders import parse_classes
from imagenet_jax.errors import ConfigError


def test_class_lists_parse_ranges_and_refuse_unknown_classes():
    assert parse_classes("0-3,7", 10) == [0, 1, 2, 3, 7]
    assert parse_classes("8,9", 10) == [8, 9]
    with pytest.raises(ConfigError, match="--classes='10'"):
        parse_classes("10", 10)
    with pytest.raises(ConfigError, match="not N or N-M"):
        parse_classes("a-b", 10)


def test_exported_classes_load_as_a_folder_dataset_with_the_same_pixels(fashion_mnist_dir, tmp_path, capsys):
    out = str(tmp_path / "bags_and_boots")
    assert prepare.main(["--dataset=fashion_mnist", f"--data_dir={fashion_mnist_dir}", f"--export_folder={out}",
                         "--classes=8,9", "--per_class=5", "--splits=train,test"]) == 0
    assert "train 10, test 10" in capsys.readouterr().out
    folder = pipeline.load_dataset(f"folder:{out}", "")
    assert folder.class_names == ("8_Bag", "9_Ankle_boot") and folder.num_classes == 2
    assert folder.num_examples("train") == 10 and folder.num_examples("test") == 10
    original = pipeline.load_dataset("fashion_mnist", fashion_mnist_dir)
    first_bag = next(encoded for encoded, label in original.read("train").as_numpy_iterator() if label == 8)
    paths, labels = folder.files("train")
    assert open(sorted(p for p, y in zip(paths, labels, strict=True) if y == 0)[0], "rb").read() == first_bag
    assert np.bincount(labels).tolist() == [5, 5]
