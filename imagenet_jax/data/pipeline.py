"""tf.data input pipelines over TFDS and image folders: deterministic, resumable training batches and exact,
padded eval batches.

Training order and augmentation are pure functions of (seed, step): epoch e is the process's shard
shuffled with a seed derived from (seed, e), and example i of it is augmented with a seed derived from
(seed, process, e, i). Resuming at step s therefore rebuilds the stream from s and reads exactly what an
uninterrupted run would have read. An image that cannot be decoded is skipped without moving any other
example (robust.py): its slot holds a masked stand-in and the logs count it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from imagenet_jax.data import datasets, folders, robust
from imagenet_jax.errors import ConfigError, DatasetNotPreparedError

if TYPE_CHECKING:
    import tensorflow as tf

_MAX_EPOCHS = 1 << 30
MAX_LABELS_PER_EXAMPLE = 16  # label sets (ImageNet-ReaL) are padded with -1 to this length


def _tf():
    import tensorflow as tf

    # TensorFlow must never grab an accelerator that JAX is going to use.
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU") if tf.config.list_physical_devices("TPU") else None
    return tf


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the training loop needs to know about a prepared dataset."""

    builder: object
    num_classes: int
    channels: int
    train_split: str
    eval_split: str
    class_names: tuple[str, ...]
    name: str = ""
    label_key: str = "label"
    label_set_key: str = ""

    def num_examples(self, split: str) -> int:
        """Number of examples in `split` (any TFDS split expression)."""
        return self.builder.info.splits[split].num_examples

    def even_splits(self, split: str, n: int, drop_remainder: bool) -> list[str]:
        """`n` disjoint contiguous parts of `split` (TFDS split expressions)."""
        import tensorflow_datasets as tfds

        return tfds.even_splits(split, n=n, drop_remainder=drop_remainder)

    def holdout(self, split: str, count: int) -> tuple[str, str]:
        """(split without its last `count` examples, those examples); TFDS stores examples shuffled."""
        if "[" in split or "+" in split:
            raise ConfigError(f"config.minival_examples needs a plain training split name, not {split!r}.")
        total = self.num_examples(split)
        if not 0 < count < total:
            raise ConfigError(f"config.minival_examples={count} must be smaller than the {total} examples of "
                              f"split {split!r}.")
        return f"{split}[:{total - count}]", f"{split}[{total - count}:]"

    def read(self, split: str) -> tf.data.Dataset:
        """(encoded image bytes, label) pairs of `split`, in the stored order."""
        return self._as_dataset(split).map(lambda example: (example["image"], example[self.label_key]))

    def read_eval(self, split: str) -> tf.data.Dataset:
        """{"image": bytes, "label", "key": file name or "", and "label_set" if any} of `split`, in stored order."""
        tf = _tf()

        def select(example):
            out = {"image": example["image"], "label": example[self.label_key],
                   "key": example.get("file_name", tf.constant(""))}
            if self.label_set_key:
                labels = tf.cast(example[self.label_set_key][:MAX_LABELS_PER_EXAMPLE], tf.int64)
                out["label_set"] = tf.pad(labels, [[0, MAX_LABELS_PER_EXAMPLE - tf.size(labels)]], constant_values=-1)
            return out

        return self._as_dataset(split).map(select)

    def _as_dataset(self, split: str):
        tf = _tf()
        import tensorflow_datasets as tfds

        options = tf.data.Options()
        options.deterministic = True
        return self.builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=tfds.ReadConfig(options=options),
        )


def load_dataset(name: str, data_dir: str, manual_dir: str = "", train_split: str = "",
                 eval_split: str = "") -> DatasetInfo | folders.FolderDatasetInfo:
    """Finds the prepared dataset (preparing it offline when possible) or raises with instructions."""
    import tensorflow_datasets as tfds

    _tf()
    if folders.is_folder_name(name):
        return folders.load_folder(name, train_split, eval_split)
    spec = datasets.get(name)
    data_dir = datasets.resolve_data_dir(data_dir)
    builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
        builder = _prepare(spec, builder, data_dir, manual_dir or spec.default_manual_dir)
    label = builder.info.features[spec.label_key]
    image = builder.info.features["image"]
    channels = image.shape[-1] or 3
    splits = builder.info.splits
    default_eval = spec.eval_split or next((s for s in ("validation", "test") if s in splits), spec.train_split)
    return DatasetInfo(
        builder=builder,
        num_classes=label.num_classes,
        channels=channels,
        train_split=train_split or spec.train_split,
        eval_split=eval_split or default_eval,
        class_names=tuple(label.names),
        name=name,
        label_key=spec.label_key,
        label_set_key=spec.label_set_key,
    )


def _prepare(spec: datasets.DatasetSpec, builder, data_dir: str, manual_dir: str):
    import tensorflow_datasets as tfds

    message = spec.instructions(data_dir, manual_dir)
    if spec.prepare_offline is not None and os.path.isdir(manual_dir):
        if spec.prepare_offline(data_dir, manual_dir):
            return tfds.builder(spec.tfds_name, data_dir=data_dir)
    if not spec.downloadable:
        raise DatasetNotPreparedError(message)
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001  (no network here is the usual case; say what to do)
        raise DatasetNotPreparedError(f"{message} (TFDS said: {type(error).__name__}: {str(error)[:200]})") from None
    return builder


def train_batches(
    info: DatasetInfo,
    *,
    global_batch_size: int,
    seed: int,
    start_step: int,
    preprocess: Callable,
    shuffle_buffer_size: int,
    cache: bool,
    process_index: int = 0,
    process_count: int = 1,
    num_shards: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches {"image": uint8 NHWC, "label": int32, "mask": bool} of this process, from start_step.

    The training split is cut into `num_shards` data shards (default: one per process), each shuffled and
    augmented on its own; every global batch takes global_batch_size / num_shards examples from each shard,
    in shard order, and process p owns a contiguous run of shards. With a fixed num_shards the global
    batches are therefore identical for any process count that divides it.
    """
    tf = _tf()
    # The stream must depend on (seed, step) alone, never on TensorFlow's global seed (which Keras code may set;
    # a global seed of 0 even makes TF compare our per-epoch seed tensors as Python bools).
    tf.random.set_seed(None)

    num_shards = num_shards or process_count
    shards_per_process = num_shards // process_count
    shard_batch_size = global_batch_size // num_shards
    examples_per_epoch = steps_per_epoch(info, global_batch_size, num_shards) * shard_batch_size
    start_epoch, batches_done = divmod(start_step, examples_per_epoch // shard_batch_size)
    splits = info.even_splits(info.train_split, num_shards, True)
    robust.check_on_a_valid_image(preprocess, "training preprocessing")

    def shard_stream(shard_index: int):
        base = _read(info, splits[shard_index])
        if cache:  # an undecodable image is cached as a stand-in with mask=False, then skipped by `augment`
            decoded = robust.map_finite_filling_gaps(
                base.map(lambda image, label: {"image": image, "label": label}),
                lambda element: {"image": _decode(element["image"], info.channels), "label": element["label"],
                                 "mask": tf.constant(True)},
                info.num_examples(splits[shard_index]))
            base = decoded.map(lambda element: (element["image"], element["label"], element["mask"])).cache()

        def one_epoch(epoch):
            shuffle_seed = (tf.cast(seed, tf.int64) * 1_000_003 + shard_index) * 1_000_003 + epoch
            shuffled = base.shuffle(shuffle_buffer_size, seed=shuffle_seed)
            return shuffled.take(examples_per_epoch).enumerate().map(lambda index, example: (epoch, index, example))

        stream = tf.data.Dataset.range(start_epoch, _MAX_EPOCHS).flat_map(one_epoch)
        stream = stream.skip(batches_done * shard_batch_size)  # Before decoding: skipping costs only reads.

        def augment(element):
            image, label, *readable = element["example"]  # cached examples carry their decoding's mask
            position = tf.constant(shard_index << 40, tf.int64) + element["position"]
            example_seed = tf.stack([tf.cast(seed, tf.int64), position])
            mask = readable[0] if readable else tf.constant(True)
            return {"image": preprocess(image, example_seed), "label": tf.cast(label, tf.int32), "mask": mask}

        stream = stream.map(lambda epoch, index, example: {"position": epoch * examples_per_epoch + index,
                                                           "example": example})
        first_position = start_epoch * examples_per_epoch + batches_done * shard_batch_size
        stream = robust.map_filling_gaps(stream, augment, first_position)
        return stream.batch(shard_batch_size, drop_remainder=True)

    first = process_index * shards_per_process
    streams = tuple(shard_stream(index) for index in range(first, first + shards_per_process))
    if len(streams) == 1:
        batches = streams[0]
    else:
        batches = tf.data.Dataset.zip(streams).map(
            lambda *parts: {key: tf.concat([part[key] for part in parts], axis=0) for key in parts[0]})
    batches = batches.prefetch(tf.data.AUTOTUNE).with_options(_throughput_options())
    return robust.counting_skips(batches.as_numpy_iterator(), robust.SkipCounter(f"training (process {process_index})"))


def _throughput_options():
    tf = _tf()
    options = tf.data.Options()
    # One thread per op: parallelism comes from many images in flight, not from splitting one image's ops.
    options.threading.max_intra_op_parallelism = 1
    return options


def steps_per_epoch(info: DatasetInfo, global_batch_size: int, num_shards: int = 1) -> int:
    """Full global batches per pass over the training split (each shard drops its remainder every epoch)."""
    per_shard = info.num_examples(info.train_split) // num_shards
    return per_shard // (global_batch_size // num_shards)


def eval_batches(
    info: DatasetInfo,
    split: str,
    *,
    local_batch_size: int,
    preprocess: Callable,
    cache: bool,
    process_index: int = 0,
    process_count: int = 1,
    label_map: np.ndarray | None = None,
) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """A factory of one pass over `split`: every example once, last batch padded, "mask" marking real ones.

    All processes yield the same number of batches (the longest shard's), padding with masked examples. An
    image that cannot be decoded comes as a masked example with "skipped" set (and is logged by file name).
    `label_map` renumbers labels (dataset class -> model class, -1 for none), e.g. for another dataset's labels.
    """
    tf = _tf()

    shards = info.even_splits(split, process_count, False)
    sizes = [info.num_examples(shard) for shard in shards]
    num_batches = math.ceil(max(sizes) / local_batch_size)
    zero_seed = tf.zeros((2,), tf.int64)
    table = None if label_map is None else tf.constant(np.asarray(label_map, np.int64))

    def relabel(labels):
        labels = tf.cast(labels, tf.int64)
        if table is not None:
            labels = tf.where(labels >= 0, tf.gather(table, tf.maximum(labels, 0)), -1)
        return tf.cast(labels, tf.int32)

    def prepare(example):
        out = {"image": preprocess(example["image"], zero_seed), "label": relabel(example["label"]),
               "mask": tf.constant(True)}
        if "label_set" in example:
            out["label_set"] = relabel(example["label_set"])
        return out

    shard = shards[process_index]
    raw = info.read_eval(shard).map(lambda example: {k: v for k, v in example.items() if k != "key"})
    examples = robust.map_finite_filling_gaps(raw, prepare, sizes[process_index])
    examples = examples.map(lambda example: {**example, "skipped": tf.logical_not(example["mask"])})
    if cache:
        examples = examples.cache()
    spec = examples.element_spec
    padding = {key: tf.zeros(value.shape, value.dtype) for key, value in spec.items()}
    padding["position"] = tf.constant(-1, tf.int64)
    padding = tf.data.Dataset.from_tensors(padding).repeat()
    batches = examples.concatenate(padding).take(num_batches * local_batch_size)
    batches = batches.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    batches = batches.with_options(_throughput_options())
    counter = robust.SkipCounter(f"evaluation of {split} (process {process_index})")
    keys: list[str] = []

    def one_pass() -> Iterator[dict[str, np.ndarray]]:
        for batch in batches.as_numpy_iterator():
            positions = batch.pop("position")
            if batch["skipped"].any():
                if not keys:  # names of the shard's files, read only when something was skipped
                    keys.extend(key.decode() for key in info.read_eval(shard).map(
                        lambda example: example["key"]).as_numpy_iterator())
                counter.add(int(batch["skipped"].sum()), [keys[p] or f"#{p}" for p in positions[batch["skipped"]]])
            yield batch

    return one_pass


def _read(info: DatasetInfo, split):
    """(encoded image bytes, label) pairs of `split`, in the stored order."""
    return info.read(split)


def _decode(image, channels: int):
    from imagenet_jax.data.preprocessing import decode

    return decode(image, channels)
