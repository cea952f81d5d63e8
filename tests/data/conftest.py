"""Fixtures of the input-pipeline tests: a fake ImageNet prepared by `python -m imagenet_jax.prepare` from the
official archive layout, and an image-folder dataset with unreadable files among the good ones."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

FAKE_TRAIN_PER_CLASS = 6
FAKE_VAL_IMAGES = 20  # -> 20 classes (the labels of the first 20 lines of TFDS's validation_labels.txt)
FOLDER_CLASSES = ("cat", "coffee", "rocket", "space")
FOLDER_TRAIN_PER_CLASS = 10
FOLDER_VAL_PER_CLASS = 3
# Unreadable files of the folder dataset: garbage bytes and a JPEG cut short (interrupted copy).
FOLDER_BAD_TRAIN = ("train/coffee/07_garbage.jpg", "train/space/03_truncated.jpg")
FOLDER_BAD_VAL = ("val/rocket/01_truncated.jpg",)


def run_prepare(*args: str) -> subprocess.CompletedProcess:
    """Runs `python -m imagenet_jax.prepare ARGS` in a subprocess."""
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "imagenet_jax.prepare", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def fake_imagenet_manual_dir(tmp_path_factory) -> str:
    """ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar of 20 classes, from skimage photographs."""
    from imagenet_jax.data.fake_imagenet import make_fake_imagenet

    manual_dir = str(tmp_path_factory.mktemp("imagenet_manual"))
    make_fake_imagenet(manual_dir, train_per_class=FAKE_TRAIN_PER_CLASS, val_images=FAKE_VAL_IMAGES)
    return manual_dir


@pytest.fixture(scope="session")
def fake_imagenet_data_dir(tmp_path_factory, fake_imagenet_manual_dir) -> str:
    """A TFDS data dir with imagenet2012 prepared from the fake archives through imagenet_jax.prepare."""
    data_dir = str(tmp_path_factory.mktemp("imagenet_tfds"))
    result = run_prepare("--dataset", "imagenet2012", "--manual_dir", fake_imagenet_manual_dir, "--data_dir", data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return data_dir


def _write_folder(root: str, bad: bool) -> None:
    from imagenet_jax.data.fake_imagenet import _PHOTOS, _photo, _sample, encode

    rng = np.random.default_rng(1)
    for split, count in (("train", FOLDER_TRAIN_PER_CLASS), ("val", FOLDER_VAL_PER_CLASS)):
        for class_index, class_name in enumerate(FOLDER_CLASSES):
            photo = _photo(_PHOTOS[class_index])
            directory = os.path.join(root, split, class_name)
            os.makedirs(directory, exist_ok=True)
            for index in range(count):
                pixels = _sample(photo, rng, portrait=index % 3 == 2)
                if index % 4 == 1:
                    name, payload = f"{index:02d}_photo.png", encode(pixels, "PNG")
                else:
                    name, payload = f"{index:02d}_photo.jpg", encode(pixels)
                for bad_file in FOLDER_BAD_TRAIN + FOLDER_BAD_VAL:
                    if bad_file.startswith(f"{split}/{class_name}/{index:02d}_"):
                        name = os.path.basename(bad_file)
                        if bad:
                            payload = b"not an image at all" if "garbage" in name else payload[: len(payload) // 3]
                with open(os.path.join(directory, name), "wb") as stream:
                    stream.write(payload)
    with open(os.path.join(root, "train", "README.txt"), "w") as stream:
        stream.write("not a class directory, not an image")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> str:
    """ROOT/{train,val}/<class>/*.jpg|png with unreadable files (FOLDER_BAD_*) among the good ones."""
    root = str(tmp_path_factory.mktemp("folder_bad"))
    _write_folder(root, bad=True)
    return root


@pytest.fixture(scope="session")
def clean_image_folder(tmp_path_factory) -> str:
    """The same folder dataset with good images under the unreadable files' names."""
    root = str(tmp_path_factory.mktemp("folder_clean"))
    _write_folder(root, bad=False)
    return root


class IndexedInfo:
    """A dataset of `size` copies of one tiny image whose label is the example's index: the stream shows the order."""

    channels, train_split = 1, "train"

    def __init__(self, size: int):
        self.size = size

    def num_examples(self, split: str) -> int:
        return self.size

    def source(self, split: str):
        return IndexedSource(self.size)


class IndexedSource:
    """The source of IndexedInfo: record i is a 2x2 zero image labeled i."""

    def __init__(self, size: int):
        self.num_examples = size

    def fetch(self, indices):
        import tensorflow as tf

        return {"image": tf.zeros([tf.size(indices), 2, 2, 1], tf.uint8), "label": indices}

    def example(self, row):
        return row

    def raise_failure(self):
        pass
