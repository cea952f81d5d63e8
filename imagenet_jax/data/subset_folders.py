"""Writes classes of a prepared dataset as an image folder (ROOT/<split>/<class>/<index>.<ext>): own-data and
transfer experiments on a class subset, e.g. pretrain on Fashion-MNIST classes 0-7, fine-tune on 8-9.

    python -m imagenet_jax.prepare --dataset fashion_mnist --export_folder /tmp/fmnist_8to9 --classes 8,9 \
        --per_class 100 --splits train,test

The stored (encoded) image bytes are written as they are, so pixels are unchanged; `per_class` keeps the first N
images of each class of a split, in the stored order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from imagenet_jax.errors import ConfigError


def parse_classes(text: str, num_classes: int) -> list[int]:
    """"0-7" or "8,9" or "1,3-5" -> sorted class indices, each < num_classes."""
    classes: set[int] = set()
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ConfigError(f"--classes={text!r}: {part!r} is not N or N-M.")
        low, high = int(match[1]), int(match[2] or match[1])
        classes.update(range(low, high + 1))
    if not classes or max(classes) >= num_classes:
        raise ConfigError(f"--classes={text!r} must name classes in 0..{num_classes - 1}.")
    return sorted(classes)


def _extension(encoded: bytes) -> str:
    return "png" if encoded[:8] == b"\x89PNG\r\n\x1a\n" else "jpg"


def write_class_subset(info, splits: Sequence[str], classes: Sequence[int], root: str,
                       per_class: int = 0) -> dict[str, int]:
    """Writes `classes` of each split of `info` (pipeline.DatasetInfo) under root; returns images per split."""
    names = [re.sub(r"[^\w.-]+", "_", str(info.class_names[label])) for label in classes]
    counts = {}
    for split in splits:
        written = {label: 0 for label in classes}
        for index, (encoded, label) in enumerate(info.read(split).as_numpy_iterator()):
            label = int(label)
            if label not in written or (per_class and written[label] >= per_class):
                continue
            directory = os.path.join(root, split, f"{label}_{names[classes.index(label)]}")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"{index:07d}.{_extension(encoded)}"), "wb") as stream:
                stream.write(encoded)
            written[label] += 1
        counts[split] = int(np.sum(list(written.values())))
    return counts
