"""tf.data input pipelines over TFDS: deterministic, resumable training batches and exact, padded eval batches.

Training order and augmentation are pure functions of (seed, step): epoch e is the process's shard
shuffled with a seed derived from (seed, e), and example i of it is augmented with a seed derived from
(seed, process, e, i). Resuming at step s therefore rebuilds the stream from s and reads exactly what an
uninterrupted run would have read.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator

import numpy as np

from imagenet_jax.data import datasets
from imagenet_jax.errors import DatasetNotPreparedError

_MAX_EPOCHS = 1 << 30


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

    def num_examples(self, split: str) -> int:
        """Number of examples in `split` (any TFDS split expression)."""
        return self.builder.info.splits[split].num_examples


def load_dataset(name: str, data_dir: str, manual_dir: str = "", train_split: str = "", eval_split: str = "") -> DatasetInfo:
    """Finds the prepared dataset (preparing it offline when possible) or raises with instructions."""
    import tensorflow_datasets as tfds

    _tf()
    spec = datasets.get(name)
    data_dir = datasets.resolve_data_dir(data_dir)
    builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
        builder = _prepare(spec, builder, data_dir, manual_dir or spec.default_manual_dir)
    label = builder.info.features["label"]
    image = builder.info.features["image"]
    channels = image.shape[-1] or 3
    return DatasetInfo(
        builder=builder,
        num_classes=label.num_classes,
        channels=channels,
        train_split=train_split or spec.train_split,
        eval_split=eval_split or spec.eval_split,
        class_names=tuple(label.names),
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
    local_batch_size: int,
    seed: int,
    start_step: int,
    preprocess: Callable,
    shuffle_buffer_size: int,
    cache: bool,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches {"image": uint8 NHWC, "label": int32} for this process, starting at start_step."""
    tf = _tf()
    import tensorflow_datasets as tfds

    shard = tfds.even_splits(info.train_split, n=process_count, drop_remainder=True)[process_index]
    examples_per_epoch = steps_per_epoch(info, local_batch_size, process_count) * local_batch_size
    base = _read(info, shard)
    if cache:
        base = base.map(lambda image, label: (_decode(image, info.channels), label), num_parallel_calls=tf.data.AUTOTUNE).cache()

    def one_epoch(epoch):
        shuffled = base.shuffle(shuffle_buffer_size, seed=tf.cast(seed, tf.int64) * 1_000_003 + epoch)
        return shuffled.take(examples_per_epoch).enumerate().map(lambda index, example: (epoch, index, example))

    start_epoch, batches_done = divmod(start_step, examples_per_epoch // local_batch_size)
    stream = tf.data.Dataset.range(start_epoch, _MAX_EPOCHS).flat_map(one_epoch)
    stream = stream.skip(batches_done * local_batch_size)  # Before decoding: skipping costs only reads.

    def augment(epoch, index, example):
        image, label = example
        position = tf.constant(process_index << 40, tf.int64) + epoch * examples_per_epoch + index
        example_seed = tf.stack([tf.cast(seed, tf.int64), position])
        return {"image": preprocess(image, example_seed), "label": tf.cast(label, tf.int32)}

    stream = stream.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    stream = stream.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return stream.as_numpy_iterator()


def steps_per_epoch(info: DatasetInfo, local_batch_size: int, process_count: int = 1) -> int:
    """Full global batches per pass over the training split (the remainder is dropped each epoch)."""
    per_process = info.num_examples(info.train_split) // process_count
    return per_process // local_batch_size


def eval_batches(
    info: DatasetInfo,
    split: str,
    *,
    local_batch_size: int,
    preprocess: Callable,
    cache: bool,
    process_index: int = 0,
    process_count: int = 1,
) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """A factory of one pass over `split`: every example once, last batch padded, "mask" marking real ones.

    All processes yield the same number of batches (the longest shard's), padding with masked examples.
    """
    tf = _tf()
    import tensorflow_datasets as tfds

    shards = tfds.even_splits(split, n=process_count, drop_remainder=False)
    sizes = [info.num_examples(shard) for shard in shards]
    num_batches = math.ceil(max(sizes) / local_batch_size)
    zero_seed = tf.zeros((2,), tf.int64)
    examples = _read(info, shards[process_index]).map(
        lambda image, label: {
            "image": preprocess(image, zero_seed),
            "label": tf.cast(label, tf.int32),
            "mask": tf.constant(True),
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache:
        examples = examples.cache()
    padding = tf.data.Dataset.from_tensors(
        {
            "image": tf.zeros(examples.element_spec["image"].shape, tf.uint8),
            "label": tf.constant(0, tf.int32),
            "mask": tf.constant(False),
        }
    ).repeat(num_batches * local_batch_size - sizes[process_index])
    batches = examples.concatenate(padding).batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return batches.as_numpy_iterator


def _read(info: DatasetInfo, split):
    """(encoded image bytes, label) pairs of `split`, in the stored order."""
    tf = _tf()
    import tensorflow_datasets as tfds

    options = tf.data.Options()
    options.deterministic = True
    dataset = info.builder.as_dataset(
        split=split,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(options=options),
    )
    return dataset.map(lambda example: (example["image"], example["label"]))


def _decode(image, channels: int):
    from imagenet_jax.data.preprocessing import decode

    return decode(image, channels)
