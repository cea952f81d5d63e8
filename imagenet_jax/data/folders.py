"""Image-folder datasets, the layout Keras' flow_from_directory reads: ROOT/<split>/<class>/*.jpg|jpeg|png|bmp|gif.

Classes are the sorted subdirectories of the training split (as Keras numbers them); files are listed in sorted
order, so a folder dataset is as deterministic as a TFDS one, and read by index (sources.FolderSource): training
takes them in a random order of the whole split (pipeline.py), never in class order. Splits are named like
TFDS splits, "train", "val", plus the two halves of a fixed random holdout, "train-without-holdout(N)" and
"train-holdout(N)".
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import TYPE_CHECKING

import numpy as np

from imagenet_jax.data import sources
from imagenet_jax.errors import ConfigError, DatasetNotPreparedError

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_HOLDOUT = re.compile(r"^(?P<base>.+?)-(?P<kind>without-holdout|holdout)\((?P<count>\d+)\)$")
_HOLDOUT_SEED = 20_120_601  # fixed: the minival holdout must not move when the run seed changes


def is_folder_name(name: str) -> bool:
    """True for dataset names of the form "folder:PATH"."""
    return name.startswith("folder:")


def folder_root(name: str) -> str:
    """The directory of a "folder:PATH" dataset name."""
    return os.path.expanduser(name[len("folder:") :])


def list_splits(root: str) -> list[str]:
    """Subdirectories of `root` that hold at least one class directory with images."""
    if not os.path.isdir(root):
        return []
    return sorted(entry for entry in os.listdir(root) if _class_dirs(os.path.join(root, entry)))


def _class_dirs(path: str) -> list[str]:
    if not os.path.isdir(path):
        return []
    return sorted(entry for entry in os.listdir(path) if os.path.isdir(os.path.join(path, entry)))


@dataclasses.dataclass(frozen=True)
class FolderDatasetInfo:
    """A folder dataset with the interface of pipeline.DatasetInfo: splits, sizes, holdout, reading."""

    root: str
    num_classes: int
    channels: int
    train_split: str
    eval_split: str
    class_names: tuple[str, ...]
    name: str = ""
    note: str = ""  # what a run's log says about the data at its start (as pipeline.DatasetInfo.note)

    def num_examples(self, split: str) -> int:
        """Number of images in `split` (any split expression of the module docstring)."""
        return len(self.files(split)[0])

    def holdout(self, split: str, count: int) -> tuple[str, str]:
        """(split without the holdout, the holdout): `count` images chosen at random once and for all."""
        if count >= self.num_examples(split):
            raise ConfigError(f"config.evals: holdout={count} must be smaller than the {self.num_examples(split)} "
                              f"images of split {split!r} of {self.root}.")
        return f"{split}-without-holdout({count})", f"{split}-holdout({count})"

    @functools.lru_cache(maxsize=64)  # noqa: B019  (a handful of frozen infos per run)
    def files(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(paths, labels) of `split`, in the dataset's fixed order."""
        holdout = _HOLDOUT.match(split)
        if holdout:
            count = int(holdout["count"])
            paths, labels = self.files(holdout["base"])
            order = np.random.default_rng(_HOLDOUT_SEED).permutation(len(paths))
            keep = np.sort(order[:count] if holdout["kind"] == "holdout" else order[count:])
            return paths[keep], labels[keep]
        return _list_split(self.root, split, self.class_names)

    @functools.lru_cache(maxsize=16)  # noqa: B019
    def source(self, split: str) -> sources.FolderSource:
        """Random access to the images of `split` by index."""
        return sources.FolderSource(*self.files(split))

    def read(self, split: str) -> tf.data.Dataset:
        """tf.data of (encoded image bytes, label) in the split's order; unreadable files fail at decode time."""
        return sources.examples(self.source(split)).map(lambda row: (row["image"], row["label"]))

    def labels(self, split: str) -> np.ndarray:
        """Every label of `split`, in order."""
        return self.files(split)[1]


def _list_split(root: str, split: str, class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    directory = os.path.join(root, split)
    if not os.path.isdir(directory):
        raise DatasetNotPreparedError(f"folder dataset {root} has no split {split!r} (no directory {directory}); "
                                      f"splits found: {', '.join(list_splits(root)) or 'none'}.")
    index = {name: position for position, name in enumerate(class_names)}
    paths, labels = [], []
    for class_name in _class_dirs(directory):
        if class_name not in index:
            raise DatasetNotPreparedError(
                f"folder dataset {root}: class directory {split}/{class_name} is not a class of the training split "
                f"({len(class_names)} classes): every split must use the training split's class names.")
        class_dir = os.path.join(directory, class_name)
        for file_name in sorted(os.listdir(class_dir)):
            if file_name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(class_dir, file_name))
                labels.append(index[class_name])
    return np.array(paths, dtype=object).astype(str), np.array(labels, dtype=np.int64)


def load_folder(name: str, train_split: str = "", eval_split: str = "") -> FolderDatasetInfo:
    """Describes the folder dataset "folder:ROOT", or raises saying what the layout must be."""
    root = folder_root(name)
    splits = list_splits(root)
    layout = "ROOT/<split>/<class>/*.jpg|png (e.g. ROOT/train/cat/1.jpg, ROOT/val/cat/2.jpg)"
    if not splits:
        raise DatasetNotPreparedError(f"config.dataset={name!r}: no image folders found in {root}; expected {layout}.")
    train_split = train_split or ("train" if "train" in splits else splits[0])
    if not eval_split:
        eval_split = next((s for s in ("val", "validation", "test") if s in splits), train_split)
    if train_split not in splits:
        raise DatasetNotPreparedError(f"folder dataset {root} has no training split {train_split!r}; "
                                      f"found {', '.join(splits)} (layout: {layout}).")
    class_names = tuple(_class_dirs(os.path.join(root, train_split)))
    return FolderDatasetInfo(root=root, num_classes=len(class_names), channels=3, train_split=train_split,
                             eval_split=eval_split, class_names=class_names, name=name)
