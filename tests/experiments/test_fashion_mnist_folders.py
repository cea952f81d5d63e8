"""experiments/fashion_mnist_folders.py, run as RESULTS.md runs it, on tiny IDX files written here: the requested
classes and counts in IDX order, every channel equal to the IDX gray level, and the folder loads as a folder
dataset whose decoded images are those pixels (RGB and grayscale PNGs decode alike)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO

SCRIPT = os.path.join(REPO, "experiments", "fashion_mnist_folders.py")
LABELS = {"train": [8, 0, 9, 8, 9, 8, 3, 9], "test": [9, 8, 1, 8]}


def write_idx(path: str, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def fake_idx_dir(directory: str) -> dict[str, np.ndarray]:
    """Four IDX files as Debian ships them (gzipped): 8 train and 4 test 28x28 images of random gray levels."""
    rng = np.random.default_rng(0)
    images = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        images[split] = rng.integers(0, 256, (len(LABELS[split]), 28, 28), dtype=np.uint8)
        write_idx(os.path.join(directory, f"{stem}-images-idx3-ubyte.gz"), images[split])
        write_idx(os.path.join(directory, f"{stem}-labels-idx1-ubyte.gz"), np.array(LABELS[split]))
    return images


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO})


def test_writes_the_first_images_of_each_class_as_rgb_pngs_of_the_idx_pixels(tmp_path):
    images = fake_idx_dir(str(tmp_path))
    out = tmp_path / "fmnist_8to9"
    done = run_script(f"--idx_dir={tmp_path}", f"--out={out}", "--classes=8,9", "--per_class=2",
                      "--test_per_class=0")
    assert done.returncode == 0, done.stderr
    assert "train: 4 images, 8_Bag 2, 9_Ankle_boot 2" in done.stdout
    assert "test: 3 images, 8_Bag 2, 9_Ankle_boot 1" in done.stdout
    # the first two 8s and 9s of train (IDX positions 0, 3 and 2, 4), every 8 and 9 of test
    assert sorted(os.listdir(out / "train" / "8_Bag")) == ["0000000.png", "0000003.png"]
    assert sorted(os.listdir(out / "train" / "9_Ankle_boot")) == ["0000002.png", "0000004.png"]
    assert sorted(os.listdir(out / "test" / "8_Bag")) == ["0000001.png", "0000003.png"]
    assert sorted(os.listdir(out / "test" / "9_Ankle_boot")) == ["0000000.png"]
    assert sorted(os.listdir(out / "train")) == ["8_Bag", "9_Ankle_boot"]  # no class 0 or 3 directory
    png = np.asarray(Image.open(out / "train" / "9_Ankle_boot" / "0000004.png"))
    assert png.shape == (28, 28, 3)
    for channel in range(3):
        np.testing.assert_array_equal(png[:, :, channel], images["train"][4])


def test_the_folder_loads_as_a_dataset_and_grayscale_decodes_to_the_same_pixels(tmp_path):
    from imagenet_jax.data import pipeline
    from imagenet_jax.data.ops import decode

    images = fake_idx_dir(str(tmp_path))
    decoded = {}
    for channels in (3, 1):
        out = tmp_path / f"c{channels}"
        done = run_script(f"--idx_dir={tmp_path}", f"--out={out}", "--classes=0-9", f"--channels={channels}",
                          "--test_per_class=-1")
        assert done.returncode == 0, done.stderr
        assert not (out / "test").exists()
        folder = pipeline.load_dataset(f"folder:{out}", "")
        assert folder.class_names == ("0_T-shirt_top", "3_Dress", "8_Bag", "9_Ankle_boot")
        paths, labels = folder.files("train")
        assert np.bincount(labels).tolist() == [1, 1, 3, 3]
        decoded[channels] = {os.path.basename(path): decode(encoded, folder.channels).numpy()  # as training reads
                             for path, (encoded, _) in zip(paths, folder.read("train"), strict=True)}
    assert decoded[3].keys() == decoded[1].keys() and len(decoded[3]) == 8
    for name, pixels in decoded[3].items():
        np.testing.assert_array_equal(pixels, decoded[1][name])
        np.testing.assert_array_equal(pixels, np.repeat(images["train"][int(name[:7])][:, :, None], 3, axis=2))


def test_missing_idx_files_stop_with_the_package_to_install(tmp_path):
    done = run_script(f"--idx_dir={tmp_path}", f"--out={tmp_path / 'out'}")
    assert done.returncode != 0 and "apt-get install dataset-fashion-mnist" in done.stderr
