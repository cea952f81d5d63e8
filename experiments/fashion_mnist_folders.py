"""Fashion-MNIST classes as image folders read straight from the IDX files: the input of RESULTS.md's transfer rows.

RESULTS.md's "Transfer learning" numbers (2026-12-01) were measured on folders written by a one-off script that
was never committed (it read Debian's dataset-fashion-mnist IDX files and wrote RGB PNGs: the first 100 training
images per class of 8-9, all test images of the chosen classes). This is the repository's script for that step,
reconstructed from that description (its content was not kept): the same images per class, in IDX order, with
the gray level copied into R, G and B. The class directory names are this repository's (as `prepare
--export_folder` names them, in label order when sorted); the lost script's names are not known.

    python experiments/fashion_mnist_folders.py --out /tmp/fmnist_0to7 --classes 0-7
    python experiments/fashion_mnist_folders.py --out /tmp/fmnist_8to9 --classes 8,9 --per_class 100 \
        --test_per_class 0                       # 100 training images per class, every test image

Layout (what `--config.dataset=folder:ROOT` reads, classes are the sorted subdirectories of ROOT/train):
ROOT/<split>/<label>_<name>/<index>.png, split "train" and "test", <index> the example's position in its IDX
file, <label>_<name> as `python -m imagenet_jax prepare --export_folder` names classes (e.g. 8_Bag). The package's
own `prepare --export_folder` writes the stored grayscale PNGs of the prepared TFDS dataset instead (1 channel);
`--channels 1` here writes grayscale too.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from imagenet_jax.data.fashion_mnist_local import find_idx_files  # noqa: E402
from imagenet_jax.data.subset_folders import parse_classes  # noqa: E402

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST's label names, as TFDS's fashion_mnist lists them (info.features["label"].names).
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def read_idx(path: str) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def class_directory(label: int) -> str:
    """<label>_<name> with the name sanitized as imagenet_jax.data.subset_folders does (8 -> '8_Bag')."""
    name = re.sub(r"[^\w.-]+", "_", CLASS_NAMES[label])
    return f"{label}_{name}"


def write_folders(idx_dir: str, out: str, classes: list[int], per_class: dict[str, int],
                  channels: int = 3) -> dict[str, dict[int, int]]:
    """Writes the first per_class[split] images (0: all) of each of `classes` per split; returns the counts."""
    files = find_idx_files(idx_dir)
    if files is None:
        raise FileNotFoundError(f"no Fashion-MNIST IDX files in {idx_dir} (apt-get install dataset-fashion-mnist)")
    counts: dict[str, dict[int, int]] = {}
    for split, prefix in (("train", "train"), ("test", "test")):
        limit = per_class[split]
        if limit < 0:
            continue
        images, labels = read_idx(files[f"{prefix}_data"]), read_idx(files[f"{prefix}_labels"])
        written = {label: 0 for label in classes}
        for index, (image, label) in enumerate(zip(images, labels)):
            label = int(label)
            if label not in written or (limit and written[label] >= limit):
                continue
            directory = os.path.join(out, split, class_directory(label))
            os.makedirs(directory, exist_ok=True)
            pixels = np.repeat(image[:, :, None], 3, axis=2) if channels == 3 else image
            Image.fromarray(pixels).save(os.path.join(directory, f"{index:07d}.png"))
            written[label] += 1
        counts[split] = written
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", required=True, help="the folder root (folder:ROOT)")
    parser.add_argument("--classes", default="0-9", help="e.g. 0-7 or 8,9")
    parser.add_argument("--per_class", type=int, default=0,
                        help="first N training images per class, in IDX order (0: all; -1: no train split)")
    parser.add_argument("--test_per_class", type=int, default=0,
                        help="first N test images per class (0: all; -1: no test split)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3,
                        help="3: RGB PNGs (as RESULTS.md's folders were), 1: grayscale")
    parser.add_argument("--idx_dir", default=DEFAULT_IDX_DIR, help="the four IDX files (Debian's location)")
    args = parser.parse_args(argv)
    classes = parse_classes(args.classes, len(CLASS_NAMES))
    counts = write_folders(args.idx_dir, args.out, classes,
                           {"train": args.per_class, "test": args.test_per_class}, args.channels)
    for split, written in counts.items():
        print(f"{split}: {sum(written.values())} images, " + ", ".join(
            f"{class_directory(label)} {count}" for label, count in written.items()))


if __name__ == "__main__":
    main()
