"""Random-access example sources: any example of a split by its index, in TensorFlow ops, so that the input
pipeline can read in any order and start anywhere.

A source has `num_examples`, `fetch(indices)` (a vector of indices -> a dict of tensors with one row per index;
the cheap, batched part: a lookup or one read call per batch) and `example(row)` (one row -> {"image": encoded
bytes or decoded uint8 HWC, "label": int64, "key": file name or "", optionally "label_set" and "mask"}; the
per-example part, run in tf.data's parallel map). Implementations: TFDS splits in ArrayRecord files
(RecordSource), image folders (FolderSource) and the decoded-in-memory cache of either (cached()).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from absl import logging

from imagenet_jax.data import records

if TYPE_CHECKING:
    import tensorflow as tf

MAX_LABELS_PER_EXAMPLE = 16  # label sets (ImageNet-ReaL) are padded with -1 to this length


class RecordSource:
    """A TFDS split stored as ArrayRecord: fetch reads the serialized records of a batch of indices in one call."""

    def __init__(self, reader: records.RecordReader, features, label_key: str = "label", label_set_key: str = ""):
        """`features`: the builder's FeaturesDict, which parses a record."""
        self.reader, self.features = reader, features
        self.label_key, self.label_set_key = label_key, label_set_key
        self.num_examples = len(reader)
        # tf.data swallows errors of the ops it runs (robust.py relies on it for bad images), so a file error is
        # kept here and raised by raise_failure() on the Python side instead of skipping a whole shard.
        self.failure: records.CorruptShardError | None = None

    def _read(self, indices) -> np.ndarray:
        try:
            return np.array(self.reader.read(indices.numpy()), dtype=object)
        except records.CorruptShardError as error:
            self.failure = self.failure or error
            return np.array([b""] * len(indices), dtype=object)

    def fetch(self, indices: tf.Tensor) -> dict[str, tf.Tensor]:
        """{"record": serialized examples} of `indices` (an int64 vector)."""
        import tensorflow as tf

        serialized = tf.py_function(self._read, [indices], tf.string)
        serialized.set_shape(indices.shape)
        return {"record": serialized}

    def example(self, row: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Parses one record; the image stays encoded."""
        import tensorflow as tf
        import tensorflow_datasets as tfds

        parsed = self.features.deserialize_example(row["record"], decoders={"image": tfds.decode.SkipDecoding()})
        out = {"image": parsed["image"], "label": tf.cast(parsed[self.label_key], tf.int64),
               "key": parsed.get("file_name", tf.constant(""))}
        if self.label_set_key:
            labels = tf.cast(parsed[self.label_set_key][:MAX_LABELS_PER_EXAMPLE], tf.int64)
            out["label_set"] = tf.pad(labels, [[0, MAX_LABELS_PER_EXAMPLE - tf.size(labels)]], constant_values=-1)
        return out

    def raise_failure(self) -> None:
        """Raises the first file error a read met (CorruptShardError), if any."""
        if self.failure is not None:
            raise self.failure


class FolderSource:
    """Image files by index: fetch gathers paths and labels, example reads the file."""

    def __init__(self, paths: np.ndarray, labels: np.ndarray):
        """Parallel arrays: file paths and int labels, in the split's order."""
        import tensorflow as tf

        # Tensors made once, outside tf.data: its functions capture them instead of embedding 1.3M paths each.
        self.paths, self.labels = tf.constant(np.asarray(paths, str)), tf.constant(np.asarray(labels, np.int64))
        self.num_examples = len(paths)

    def fetch(self, indices: tf.Tensor) -> dict[str, tf.Tensor]:
        """{"key": paths, "label": labels} of `indices`."""
        import tensorflow as tf

        return {"key": tf.gather(self.paths, indices), "label": tf.gather(self.labels, indices)}

    def example(self, row: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Reads the file; a missing or unreadable file fails here (and is skipped as an unreadable image)."""
        import tensorflow as tf

        return {"image": tf.io.read_file(row["key"]), "label": row["label"], "key": row["key"]}

    def raise_failure(self) -> None:
        """Folders have no record files: per-file errors are skipped images."""


class _CachedSource:
    """Every example of a source decoded once and held in memory as one flat uint8 buffer (sizes may differ)."""

    def __init__(self, pixels: np.ndarray, offsets: np.ndarray, shapes: np.ndarray, labels: np.ndarray,
                 masks: np.ndarray):
        import tensorflow as tf

        # Tensors made once, outside tf.data: its functions capture them instead of embedding copies.
        self.pixels, self.offsets, self.shapes = tf.constant(pixels), tf.constant(offsets), tf.constant(shapes)
        self.labels, self.masks = tf.constant(labels), tf.constant(masks)
        self.num_examples = len(labels)

    def fetch(self, indices: tf.Tensor) -> dict[str, tf.Tensor]:
        """Offsets, shapes, labels and decodability of `indices`."""
        import tensorflow as tf

        return {name: tf.gather(getattr(self, name), indices) for name in ("offsets", "shapes", "labels", "masks")}

    def example(self, row: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The decoded image (a slice of the buffer); "mask" False where the original could not be decoded."""
        import tensorflow as tf

        size = tf.reduce_prod(row["shapes"])
        image = tf.reshape(tf.slice(self.pixels, [row["offsets"]], [size]), row["shapes"])
        return {"image": image, "label": row["labels"], "mask": row["masks"], "key": tf.constant("")}

    def raise_failure(self) -> None:
        """Built in full up front: any file error was raised then."""


@functools.lru_cache(maxsize=4)
def cached(source, channels: int, min_side: int = 0) -> _CachedSource:
    """`source` decoded once into memory (for datasets that fit: decoded Fashion-MNIST is 47 MB, ImageNet at
    full size ~200 GB); with `min_side`, each JPEG at the smallest 1/2^k scale whose short side stays >= min_side
    (a low-resolution cache: ImageNet ~180 GB at 1/2 scale, ~46 GB at 1/4). Undecodable images are kept as
    stand-ins with mask False. Memoized: the segments of a progressive-resizing run share one cache."""
    import tensorflow as tf

    from imagenet_jax.data import jpeg
    from imagenet_jax.data.preprocessing import decode

    def decode_one(image: tf.Tensor) -> tf.Tensor:
        if min_side and image.dtype == tf.string:
            return jpeg.decode_reduced(image, channels, min_side)
        return decode(image, channels)

    parts = None
    if isinstance(source, RecordSource):
        try:  # whole batches, no per-example error handling: 5x faster on Fashion-MNIST (BENCHMARKS.md, issue 28)
            parts = _decode_record_batches(source, decode_one)
        except tf.errors.OpError as error:  # an undecodable image: decode again, example by example
            logging.warning("Decoding the cache batch by batch failed (%s); decoding it example by example, "
                            "keeping undecodable images as masked stand-ins.", str(error).strip().splitlines()[0])
    if parts is None:
        parts = _decode_examples(source, decode_one)
    source.raise_failure()
    shapes = np.concatenate(parts["shape"]).reshape(-1, 3)
    offsets = np.concatenate([[0], np.cumsum(np.prod(shapes, axis=1))[:-1]]).astype(np.int64)
    pixels = np.concatenate(parts["pixels"]) if parts["pixels"] else np.zeros(0, np.uint8)
    logging.info("Cached %d decoded images in memory: %.1f MB%s.", len(shapes), pixels.nbytes / 1e6,
                 f" (JPEGs at reduced scale, short side >= {min_side} px)" if min_side else "")
    return _CachedSource(pixels, offsets, shapes, np.concatenate(parts["label"]), np.concatenate(parts["mask"]))


def _decode_record_batches(source: RecordSource, decode_one, chunk: int = 1024) -> dict[str, list]:
    """Every record of `source`, parsed and decoded a batch at a time; raises tf.errors.OpError on a bad image."""
    import tensorflow as tf
    from tensorflow_datasets.core import example_parser

    specs = example_parser.ExampleParser(source.features.get_serialized_info()).flat_feature_specs
    specs = {key: specs[key] for key in ("image", source.label_key)}

    def decode_batch(indices):
        parsed = tf.io.parse_example(source.fetch(indices)["record"], specs)

        def one(image):
            decoded = decode_one(image)
            return tf.RaggedTensor.from_tensor(tf.reshape(decoded, [1, -1])), tf.shape(decoded, out_type=tf.int64)

        pixels, shapes = tf.map_fn(one, parsed["image"], parallel_iterations=16, fn_output_signature=(
            tf.RaggedTensorSpec([1, None], tf.uint8, ragged_rank=1), tf.TensorSpec([3], tf.int64)))
        return {"pixels": pixels.flat_values, "shape": shapes, "label": tf.cast(parsed[source.label_key], tf.int64)}

    batches = tf.data.Dataset.range(source.num_examples).batch(chunk).map(
        decode_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    parts: dict[str, list] = {"pixels": [], "shape": [], "label": [], "mask": []}
    for batch in batches.prefetch(tf.data.AUTOTUNE):
        for key in ("pixels", "shape", "label"):
            parts[key].append(batch[key].numpy())
        parts["mask"].append(np.ones(len(parts["label"][-1]), bool))
    return parts


def _decode_examples(source, decode_one) -> dict[str, list]:
    """Every example of `source` decoded one at a time; an undecodable one becomes a stand-in with mask False."""
    import tensorflow as tf

    from imagenet_jax.data import robust

    decoded = robust.map_finite_filling_gaps(
        examples(source).map(lambda row: {"image": row["image"], "label": row["label"]}),
        lambda row: {"image": decode_one(row["image"]), "label": row["label"], "mask": tf.constant(True)},
        source.num_examples)
    # Batched (ragged: sizes may differ) so that Python handles a few hundred arrays, not one per image.
    flat = decoded.map(lambda row: {"pixels": tf.reshape(row["image"], [-1]), "shape": tf.shape(row["image"],
                                                                                                out_type=tf.int64),
                                    "label": tf.cast(row["label"], tf.int64), "mask": row["mask"]})
    parts: dict[str, list] = {"pixels": [], "shape": [], "label": [], "mask": []}
    for batch in flat.ragged_batch(1024).prefetch(tf.data.AUTOTUNE):
        parts["pixels"].append(batch["pixels"].flat_values.numpy())
        for key in ("shape", "label", "mask"):
            parts[key].append(batch[key].numpy())
    return parts


def examples(source, indices: Sequence[int] | None = None, chunk: int = 256) -> tf.data.Dataset:
    """tf.data of source.example rows for `indices` (default: all, in order), read `chunk` indices per call."""
    import tensorflow as tf

    if indices is None:
        index_data = tf.data.Dataset.range(source.num_examples)
    else:
        index_data = tf.data.Dataset.from_tensor_slices(np.asarray(indices, np.int64))
    rows = index_data.batch(chunk).map(source.fetch, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    return rows.map(source.example, num_parallel_calls=tf.data.AUTOTUNE)


def keys(source, indices: Sequence[int]) -> list[str]:
    """The file names of the examples at `indices` ("" where the source has none), for log messages."""
    import tensorflow as tf

    rows = source.fetch(tf.constant(np.asarray(indices, np.int64)))
    if "key" not in rows:  # records: the name is inside the record (parsing does not decode the image)
        rows = {"key": tf.stack([source.example({name: value[i] for name, value in rows.items()})["key"]
                                 for i in range(len(indices))])}
    return [name.decode() for name in rows["key"].numpy()]
