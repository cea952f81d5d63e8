"""Registry of datasets: which TFDS builder, which splits, and how to prepare it without a network.

Besides the registered names, config.dataset accepts any TFDS image-classification dataset by name
("oxford_flowers102", "imagenette/320px-v2") and image folders ("folder:/data/pets", see folders.py).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from imagenet_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How a dataset is found, prepared and split."""

    name: str
    tfds_name: str
    train_split: str
    eval_split: str
    # Prepares the dataset in data_dir from local files; returns False if it found none.
    prepare_offline: Callable[[str, str], bool] | None = None
    # Says how to prepare the dataset when it is missing (args: data_dir, manual_dir).
    how_to_prepare: Callable[[str, str], str] | None = None
    default_manual_dir: str = ""
    downloadable: bool = True  # False: TFDS cannot fetch it (ImageNet); never try.
    label_key: str = "label"
    # Evaluation against a set of correct labels (ImageNet-ReaL): the feature holding them; "" for none.
    label_set_key: str = ""
    # Score only among the classes that occur in the split (ImageNet-R/-A: 200 of the 1000 classes).
    restrict_to_present_classes: bool = False

    def instructions(self, data_dir: str, manual_dir: str) -> str:
        """How to prepare this dataset when it is missing."""
        how = self.how_to_prepare or _generic_instructions(self.tfds_name)
        return how(data_dir, manual_dir)


def _unregistered(name: str) -> DatasetSpec | None:
    # Names outside the registry: image folders ("folder:PATH") and any TFDS dataset.
    if name.startswith("folder:"):
        return DatasetSpec(name=name, tfds_name="", train_split="", eval_split="")
    if name and _is_tfds_dataset(name):
        return DatasetSpec(name=name, tfds_name=name, train_split="train", eval_split="")
    return None


DATASETS: Registry[DatasetSpec] = Registry("dataset", config_key="dataset", fallback=_unregistered,
                                           also=", a TFDS dataset or folder:PATH")


def register(spec: DatasetSpec) -> DatasetSpec:
    """Adds a dataset to the registry (under spec.name)."""
    return DATASETS.register(spec.name, spec)


def names() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def get(name: str, key: str = "dataset") -> DatasetSpec:
    """The spec of a registered dataset, a folder ("folder:PATH") or any TFDS dataset; else a ConfigError."""
    return DATASETS.get(name, key=key)


def _is_tfds_dataset(name: str) -> bool:
    import tensorflow_datasets as tfds  # slow import: only for names outside the registry

    try:
        tfds.builder_cls(name.split("/")[0].split(":")[0])
    except Exception:  # noqa: BLE001  (DatasetNotFoundError and friends: not a TFDS name)
        return False
    return True


def resolve_data_dir(data_dir: str) -> str:
    """The TFDS data dir a run uses: the config's, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "") or "~/tensorflow_datasets")


def _generic_instructions(tfds_name: str) -> Callable[[str, str], str]:
    def how(data_dir: str, manual_dir: str) -> str:
        return (
            f"dataset {tfds_name!r} is not prepared in {data_dir} and could not be downloaded. On a machine with "
            f"network access run: python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{tfds_name}', data_dir='{data_dir}').download_and_prepare()\" and copy {data_dir} here."
        )

    return how


def _imagenet_instructions(data_dir: str, manual_dir: str) -> str:
    manual_dir = manual_dir or os.path.join(data_dir, "downloads", "manual")
    return (
        f"ImageNet (imagenet2012) is not prepared in data_dir={data_dir}. Download ILSVRC2012_img_train.tar and "
        f"ILSVRC2012_img_val.tar from https://image-net.org (login required), put both in manual_dir={manual_dir}, "
        f"then run: python -m imagenet_jax.prepare --dataset imagenet2012 --manual_dir {manual_dir} "
        f"--data_dir {data_dir} (needs ~300 GB free), or pass --config.data_dir=DIR where it is prepared."
    )


def _fashion_mnist_offline(data_dir: str, manual_dir: str) -> bool:
    from imagenet_jax.data import fashion_mnist_local  # TFDS import is slow: only when preparing.

    return fashion_mnist_local.prepare_from_idx(data_dir, manual_dir)


def _fashion_mnist_instructions(data_dir: str, manual_dir: str) -> str:
    return (
        f"Fashion-MNIST is not prepared in data_dir={data_dir}, no IDX files were found in "
        f"manual_dir={manual_dir or '/usr/share/datasets/fashion-mnist'} and TFDS could not download it. "
        "Install the Debian package (apt-get install dataset-fashion-mnist), or put train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a directory "
        "and pass --config.manual_dir=DIR."
    )


register(
    DatasetSpec(
        name="fashion_mnist",
        tfds_name="fashion_mnist",
        train_split="train",
        eval_split="test",
        prepare_offline=_fashion_mnist_offline,
        how_to_prepare=_fashion_mnist_instructions,
        default_manual_dir="/usr/share/datasets/fashion-mnist",
    )
)
register(
    DatasetSpec(
        name="imagenet2012",
        tfds_name="imagenet2012",
        train_split="train",
        eval_split="validation",
        how_to_prepare=_imagenet_instructions,
        downloadable=False,
    )
)
for _name, _eval in (("cifar10", "test"), ("cifar100", "test"), ("imagenette", "validation"), ("mnist", "test")):
    register(DatasetSpec(name=_name, tfds_name=_name, train_split="train", eval_split=_eval))
# ImageNet evaluation sets (no training split); their labels are ImageNet's 1000 class indices.
register(DatasetSpec(name="imagenet_v2", tfds_name="imagenet_v2/matched-frequency", train_split="",
                     eval_split="test"))
for _variant in ("matched-frequency", "threshold-0.7", "topimages"):
    register(DatasetSpec(name=f"imagenet_v2/{_variant}", tfds_name=f"imagenet_v2/{_variant}", train_split="",
                         eval_split="test"))
register(DatasetSpec(name="imagenet2012_real", tfds_name="imagenet2012_real", train_split="", eval_split="validation",
                     label_key="original_label", label_set_key="real_label", downloadable=False))
register(DatasetSpec(name="imagenet_r", tfds_name="imagenet_r", train_split="", eval_split="test",
                     restrict_to_present_classes=True))
register(DatasetSpec(name="imagenet_a", tfds_name="imagenet_a", train_split="", eval_split="test",
                     restrict_to_present_classes=True))
register(DatasetSpec(name="imagenet_sketch", tfds_name="imagenet_sketch", train_split="", eval_split="test"))
