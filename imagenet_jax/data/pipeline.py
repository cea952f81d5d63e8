"""tf.data input pipelines over TFDS datasets and image folders: training batches in a global random order that
is a pure function of (seed, step), and exact, padded eval batches.

Training order. Epoch e is one permutation of the whole training split, `index_shuffle(i, (seed, e), N - 1)`
(TensorFlow's stateless bijection of 0..N-1: no buffer, no state, O(1) per index); its first
steps_per_epoch * B positions are used, so the N mod B examples left out differ every epoch. Global batch k
holds positions [k*B, (k+1)*B) of that sequence and process p of P takes its contiguous slice
[k*B + p*B/P, k*B + (p+1)*B/P): the global batches are the same for every process count by construction, and
example j of the sequence is augmented with the seed (seed, j), which does not depend on the process count
either. Resuming at step s computes its first indices and reads exactly one batch.

This needs random access to examples, which sources.py provides: image folders by path (tf.gather + read_file),
TFDS datasets from TFDS's `array_record` files (records.py), the decoded-in-memory cache by offset.

Why tf.data over random-access sources, and not Grain: the preprocessing (preprocessing.py, augment.py) is
TensorFlow ops that run in tf.data's C++ thread pool without the GIL; Grain would run them per example from
Python worker processes (each with its own TensorFlow runtime), losing that, for what this design gets without
it: Grain's index sampler is the same idea as the stateless permutation here, and its checkpointable
iterator state is, here, just the step number the training loop already checkpoints. tf.data's own
`global_shuffle` needs a dataset with random access in tf.data, which TFRecord files and `py_function`
reads are not.

An image that cannot be decoded is skipped without moving any other example (robust.py): its slot holds a
masked stand-in and the logs count it. A record file that cannot be read stops the run with its name and the
command that prepares the dataset again (records.CorruptShardError).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from imagenet_jax.data import datasets, folders, records, reencode, repeated_augmentation, robust, sources
from imagenet_jax.errors import ConfigError, DatasetNotPreparedError

if TYPE_CHECKING:
    import tensorflow as tf

_MAX_STEPS = 1 << 50


def _tf():
    import tensorflow as tf

    # TensorFlow must never grab an accelerator that JAX is going to use.
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU") if tf.config.list_physical_devices("TPU") else None
    return tf


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the training loop needs to know about a prepared TFDS dataset."""

    builder: object
    num_classes: int
    channels: int
    train_split: str
    eval_split: str
    class_names: tuple[str, ...]
    name: str = ""
    label_key: str = "label"
    label_set_key: str = ""
    data_dir: str = ""
    note: str = ""  # what a run's log says about the data once at its start (e.g. that the JPEGs are re-encoded)

    def num_examples(self, split: str) -> int:
        """Number of examples in `split` (any TFDS split expression)."""
        return self.builder.info.splits[split].num_examples

    def holdout(self, split: str, count: int) -> tuple[str, str]:
        """(split without its last `count` examples, those examples); TFDS stores examples shuffled."""
        if "[" in split or "+" in split:
            raise ConfigError(f"config.evals: a holdout needs a plain training split name, not {split!r}.")
        total = self.num_examples(split)
        if not 0 < count < total:
            raise ConfigError(f"config.evals: holdout={count} must be smaller than the {total} examples of "
                              f"split {split!r}.")
        return f"{split}[:{total - count}]", f"{split}[{total - count}:]"

    @functools.lru_cache(maxsize=16)  # noqa: B019  (a handful of frozen infos per run)
    def source(self, split: str) -> sources.RecordSource:
        """Random access to the examples of `split` (a TFDS split expression)."""
        reader = records.RecordReader(self.builder.info.splits[split].file_instructions, self.name or "NAME",
                                      self.data_dir or str(self.builder.data_dir))
        return sources.RecordSource(reader, self.builder.info.features, self.label_key, self.label_set_key)

    def read(self, split: str) -> tf.data.Dataset:
        """(encoded image bytes, label) pairs of `split`, in the stored order."""
        return sources.examples(self.source(split)).map(lambda row: (row["image"], row["label"]))

    def labels(self, split: str) -> np.ndarray:
        """Every label of `split`, in order."""
        batches = self.read(split).map(lambda image, label: label).batch(4096).as_numpy_iterator()
        return np.concatenate([np.zeros(0, np.int64), *batches])


def load_dataset(name: str, data_dir: str, manual_dir: str = "", train_split: str = "",
                 eval_split: str = "") -> DatasetInfo | folders.FolderDatasetInfo:
    """Finds the prepared dataset (preparing it offline when possible) or raises with instructions."""
    import tensorflow_datasets as tfds

    _tf()
    if folders.is_folder_name(name):
        return folders.load_folder(name, train_split, eval_split)
    spec = datasets.get(name)
    data_dir = datasets.resolve_data_dir(data_dir)
    try:
        builder = tfds.builder(spec.tfds_name, data_dir=data_dir)  # a format here would clash with a prepared one
    except Exception as error:
        if damaged := damaged_dataset_info(spec.tfds_name, data_dir):  # a damaged dataset_info.json: name it
            raise DatasetNotPreparedError(
                f"{damaged[0]} is damaged ({damaged[1]}). Prepare the dataset again: "
                f"{records.prepare_command(name, data_dir, ' --overwrite')}") from error
        raise
    if not builder.is_prepared():
        builder = _prepare(spec, builder, data_dir, manual_dir or spec.default_manual_dir)
    records.check_format(builder, name, data_dir)
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
        data_dir=data_dir,
        note=reencode.describe(os.fspath(builder.data_dir)),  # a re-encoded copy says so; the original says nothing
    )


def damaged_dataset_info(tfds_name: str, data_dir: str) -> tuple[str, str] | None:
    """(path, why) of a prepared `tfds_name`'s dataset_info.json under `data_dir` that does not parse, else None."""
    import json

    from etils import epath

    base = epath.Path(data_dir) / tfds_name.split(":")[0]
    found = [path for pattern in ("*/dataset_info.json", "*/*/dataset_info.json")  # VERSION or CONFIG/VERSION
             for path in base.glob(pattern)] if base.exists() else []
    for path in sorted(found):
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            return str(path), f"{type(error).__name__}: {error}"
    return None


def _prepare(spec: datasets.DatasetSpec, builder, data_dir: str, manual_dir: str):
    import tensorflow_datasets as tfds

    message = spec.instructions(data_dir, manual_dir)
    if spec.prepare_offline is not None and os.path.isdir(manual_dir):
        if spec.prepare_offline(data_dir, manual_dir):
            return tfds.builder(spec.tfds_name, data_dir=data_dir)
    if not spec.downloadable:
        raise DatasetNotPreparedError(message)
    try:
        builder.download_and_prepare(file_format=records.ARRAY_RECORD)
    except Exception as error:  # noqa: BLE001  (no network here is the usual case; say what to do)
        raise DatasetNotPreparedError(f"{message} (TFDS said: {type(error).__name__}: {str(error)[:200]})") from None
    return builder


def train_batches(
    info: DatasetInfo | folders.FolderDatasetInfo,
    *,
    global_batch_size: int,
    seed: int,
    start_step: int,
    preprocess: Callable,
    cache: bool,
    cache_min_side: int = 0,
    aug_repeats: int = 1,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches {"image": uint8 NHWC, "label": int32, "mask": bool} of this process, from start_step.

    Global batch k is positions [k*B, (k+1)*B) of the global order (module docstring); this process gets its
    contiguous 1/process_count of it, so the global batches do not depend on the process count. `cache_min_side`
    > 0 reads the low-resolution cache (sources.cached) instead of the files, whatever `cache` says.
    `aug_repeats` > 1: repeated augmentation, k copies of each image from one decode (repeated_augmentation.py).
    """
    tf = _tf()
    # The stream must depend on (seed, step) alone, never on TensorFlow's global seed (which Keras code may set;
    # a global seed of 0 even makes TF compare our per-epoch seed tensors as Python bools).
    tf.random.set_seed(None)
    output = robust.check_on_a_valid_image(preprocess, "training preprocessing")
    source = info.source(info.train_split)
    if cache or cache_min_side:  # an undecodable image is cached as a stand-in with mask=False, skipped by `augment`
        source = sources.cached(source, info.channels, cache_min_side)
    local_batch_size = global_batch_size // process_count
    batches_per_epoch = steps_per_epoch(info, global_batch_size)
    last_index = tf.constant(source.num_examples - 1, tf.int64)
    seed64 = tf.constant(seed, tf.int64)

    def step_indices(step):
        """Positions and record indices of this process's part of global batch `step`."""
        epoch, batch_in_epoch = step // batches_per_epoch, step % batches_per_epoch
        slot = tf.range(local_batch_size, dtype=tf.int64) + process_index * local_batch_size
        in_epoch = batch_in_epoch * global_batch_size + slot
        record = tf.random.experimental.index_shuffle(in_epoch, tf.stack([seed64, epoch]), last_index)
        return {"position": step * local_batch_size + slot - process_index * local_batch_size,
                "global_position": step * global_batch_size + slot, **source.fetch(record)}

    def augment(element):
        example = source.example(element)
        example_seed = tf.stack([seed64, element["global_position"]])
        return {"image": preprocess(example["image"], example_seed), "label": tf.cast(example["label"], tf.int32),
                "mask": example.get("mask", tf.constant(True))}

    if aug_repeats > 1:
        examples = repeated_augmentation.examples(
            source, preprocess, tf.zeros_like(output), repeats=aug_repeats, local_batch_size=local_batch_size,
            global_batch_size=global_batch_size, batches_per_epoch=batches_per_epoch, seed=seed,
            steps=(start_step, _MAX_STEPS), process_index=process_index, channels=info.channels)
        batches = examples.batch(local_batch_size, drop_remainder=True).map(
            repeated_augmentation.spread(aug_repeats, local_batch_size))
    else:
        rows = tf.data.Dataset.range(start_step, _MAX_STEPS).map(step_indices, num_parallel_calls=tf.data.AUTOTUNE)
        stand_in = {"image": tf.zeros_like(output), "label": tf.constant(0, tf.int32)}
        batches = robust.map_batches_filling_gaps(rows, augment, local_batch_size, stand_in)
    batches = batches.prefetch(tf.data.AUTOTUNE)
    iterator = _raising_failures(batches.with_options(_throughput_options()).as_numpy_iterator(), source)
    return robust.counting_skips(iterator, robust.SkipCounter(f"training (process {process_index})"))


def _raising_failures(batches: Iterator, source) -> Iterator:
    """Passes batches through; raises the source's record-file error (kept aside by tf.data) before any batch."""
    for batch in batches:
        source.raise_failure()
        yield batch


def _throughput_options():
    tf = _tf()
    options = tf.data.Options()
    # One thread per op: parallelism comes from many images in flight, not from splitting one image's ops.
    options.threading.max_intra_op_parallelism = 1
    options.deterministic = True
    return options


def steps_per_epoch(info: DatasetInfo | folders.FolderDatasetInfo, global_batch_size: int) -> int:
    """Full global batches per pass over the training split (the remainder is left out, a different one each
    epoch)."""
    return info.num_examples(info.train_split) // global_batch_size


def process_range(num_examples: int, process_index: int, process_count: int) -> tuple[int, int]:
    """[begin, end) of the examples process `process_index` evaluates: contiguous, sizes differing by <= 1."""
    return (num_examples * process_index // process_count, num_examples * (process_index + 1) // process_count)


def eval_batches(
    info: DatasetInfo | folders.FolderDatasetInfo,
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

    All processes yield the same number of batches (the longest part's), padding with masked examples. An
    image that cannot be decoded comes as a masked example with "skipped" set (and is logged by file name).
    `label_map` renumbers labels (dataset class -> model class, -1 for none), e.g. for another dataset's labels.
    """
    tf = _tf()

    source = info.source(split)
    total = source.num_examples
    sizes = [end - begin for begin, end in (process_range(total, p, process_count) for p in range(process_count))]
    num_batches = math.ceil(max(sizes) / local_batch_size)
    begin, end = process_range(total, process_index, process_count)
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

    raw = sources.examples(source, np.arange(begin, end)).map(
        lambda example: {key: value for key, value in example.items() if key != "key"})
    examples = robust.map_finite_filling_gaps(raw, prepare, end - begin)
    examples = examples.map(lambda example: {**example, "skipped": tf.logical_not(example["mask"])})
    if cache:
        examples = examples.cache()
    spec = examples.element_spec
    padding = {key: tf.zeros(value.shape, value.dtype) for key, value in spec.items()}
    padding["position"] = tf.constant(-1, tf.int64)
    # Only the padding is cut to length: a take() over the cached examples would stop before their end whenever
    # they fill the batches exactly, and tf.data then discards the unfinished cache and decodes every pass again.
    padding = tf.data.Dataset.from_tensors(padding).repeat(num_batches * local_batch_size - (end - begin))
    batches = examples.concatenate(padding)
    batches = batches.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    batches = batches.with_options(_throughput_options())
    counter = robust.SkipCounter(f"evaluation of {split} (process {process_index})")

    def one_pass() -> Iterator[dict[str, np.ndarray]]:
        for batch in _raising_failures(batches.as_numpy_iterator(), source):
            positions = batch.pop("position")
            if batch["skipped"].any():
                indices = begin + positions[batch["skipped"]]
                names = sources.keys(source, indices)
                counter.add(int(batch["skipped"].sum()), [name or f"#{i}" for name, i in zip(names, indices)])
            yield batch

    return one_pass
