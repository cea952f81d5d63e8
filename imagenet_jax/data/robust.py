"""Corrupt or truncated images never stop a run: the example is skipped, counted and logged, and the stream keeps
its positions, so batches and resumes stay exactly what they would have been.

`map_filling_gaps`: preprocessing errors drop the example (tf.data's ignore_errors) and a scan puts a stand-in
into its slot: a copy of the next good example with mask=False, which the loss ignores and evaluation counts as
skipped. Batches keep positions [s*B, (s+1)*B) whatever fails. `map_batches_filling_gaps`, which training's
batches use, does the same per batch (a batch's survivors are batched, the gaps filled by one gather), several
batches in parallel: the per-example machinery costs ~1/3 less CPU than the scan and, unlike the scan, spreads
over all cores (BENCHMARKS.md). A stand-in there copies the next good example of its own batch, or is zeros.
`map_or_placeholder` (one output per element, the mapped one or a placeholder) is simpler but ~0.4 ms per element
slower; only the one-off folder scan of imagenet_jax.prepare uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
from absl import logging

if TYPE_CHECKING:
    import tensorflow as tf


def map_filling_gaps(dataset: tf.data.Dataset, fn: Callable, first_position: int,
                     keep_position: bool = False) -> tf.data.Dataset:
    """Maps `fn` over elements {"position", ...} (positions consecutive from `first_position`); failed elements
    become mask=False copies of the next good one. `fn` returns a dict with a boolean "mask". With
    keep_position, every output keeps its slot's "position" (stand-ins included)."""
    import tensorflow as tf

    mapped = dataset.map(lambda element: {**fn(element), "position": element["position"]},
                         num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)

    def fill(expected, element):
        gap = element["position"] - expected
        body = dict(element)
        if not keep_position:
            del body["position"]

        def with_stand_ins():
            out = {key: tf.repeat(value[None], gap + 1, axis=0) for key, value in body.items()}
            stand_in_masks = tf.zeros(tf.concat([[gap], tf.shape(body["mask"], out_type=tf.int64)], 0), tf.bool)
            out["mask"] = tf.concat([stand_in_masks, body["mask"][None]], axis=0)
            if keep_position:
                out["position"] = tf.range(expected, element["position"] + 1)
            return out

        out = tf.cond(gap > 0, with_stand_ins, lambda: {key: value[None] for key, value in body.items()})
        return element["position"] + 1, out

    return mapped.scan(tf.constant(first_position, tf.int64), fill).unbatch()


def map_batches_filling_gaps(rows: tf.data.Dataset, fn: Callable, batch_size: int, stand_in: dict) -> tf.data.Dataset:
    """Batches of `fn` over the examples of each element of `rows` (a dict of [batch_size] tensors: one batch's
    inputs). An example whose `fn` fails keeps its slot, as a mask=False copy of the next good example of its
    batch, else of `stand_in` (fn's output without "mask"). `fn` returns a dict with a scalar boolean "mask".

    The same contract as map_filling_gaps followed by batch, with the gaps found per batch: one vectorized gather
    instead of a scan over every example, several batches built in parallel (BENCHMARKS.md, "Input pipeline").
    """
    import tensorflow as tf

    sentinel = {**stand_in, "mask": tf.constant(False), "slot": tf.constant(batch_size, tf.int32)}

    def survivors(row):
        slots = tf.data.Dataset.range(batch_size, output_type=tf.int32)
        examples = tf.data.Dataset.zip(slots, tf.data.Dataset.from_tensor_slices(row))
        mapped = examples.map(lambda slot, element: {**fn(element), "slot": slot}).ignore_errors(log_warning=True)
        # The sentinel ends every batch, so a batch whose examples all failed still yields one.
        return mapped.concatenate(tf.data.Dataset.from_tensors(sentinel)).batch(batch_size + 1)

    def fill(batch):
        wanted = tf.range(batch_size, dtype=tf.int32)
        chosen = tf.searchsorted(batch["slot"], wanted, side="left")  # the first survivor at or after each slot
        out = {key: tf.gather(value, chosen) for key, value in batch.items() if key != "slot"}
        out["mask"] = tf.logical_and(out["mask"], tf.equal(tf.gather(batch["slot"], chosen), wanted))
        return out

    batches = rows.interleave(survivors, cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    return batches.map(fill, num_parallel_calls=tf.data.AUTOTUNE)


def map_finite_filling_gaps(dataset: tf.data.Dataset, fn: Callable, count: int) -> tf.data.Dataset:
    """map_filling_gaps over a finite dataset of `count` dict elements with an encoded "image"; every output
    has its "position" (0..count-1). A decodable sentinel after the last element lets trailing failures be
    filled too."""
    import tensorflow as tf

    def sentinel_value(key, spec):
        if spec.dtype == tf.string:
            return tf.constant(_SENTINEL_IMAGE() if key == "image" else b"")
        shape = [0 if size is None else size for size in spec.shape]
        return tf.zeros(shape, spec.dtype) - (1 if spec.dtype.is_integer and spec.shape.rank else 0)

    sentinel = {key: sentinel_value(key, spec) for key, spec in dataset.element_spec.items()}
    indexed = dataset.enumerate().map(lambda position, element: {**element, "position": position})
    indexed = indexed.concatenate(tf.data.Dataset.from_tensors({**sentinel, "position": tf.constant(count, tf.int64)}))
    return map_filling_gaps(indexed, fn, 0, keep_position=True).take(count)


def _SENTINEL_IMAGE() -> bytes:  # noqa: N802  (a constant, computed once)
    global _SENTINEL
    if _SENTINEL is None:
        import tensorflow as tf

        _SENTINEL = tf.io.encode_jpeg(tf.fill((8, 8, 3), tf.constant(128, tf.uint8))).numpy()
    return _SENTINEL


_SENTINEL = None


def check_on_a_valid_image(preprocess: Callable, what: str) -> tf.Tensor:
    """Raises ConfigError when `preprocess` fails on a valid JPEG: a broken chain must not pass for bad data
    (every example would be skipped and training would wait forever for a good one). Returns its output."""
    import tensorflow as tf

    from imagenet_jax.errors import ConfigError

    try:
        return preprocess(tf.constant(_SENTINEL_IMAGE()), tf.constant([0, 0], tf.int64))
    except (tf.errors.OpError, ValueError, TypeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"the {what} fails on a valid 8x8 JPEG, so it would fail on every image: {message}") from None


def map_or_placeholder(dataset: tf.data.Dataset, fn: Callable, placeholder: Callable,
                       parallel: bool = True) -> tf.data.Dataset:
    """Exactly one output per element: fn(element), or placeholder(element) when fn raises."""
    import tensorflow as tf

    def one(*components):
        # Tuple datasets hand their components as separate arguments; rebuild the element either way.
        element = components[0] if len(components) == 1 else components
        good = tf.data.Dataset.from_tensors(element).map(fn).ignore_errors()
        return good.concatenate(tf.data.Dataset.from_tensors(element).map(placeholder)).take(1)

    if not parallel:
        return dataset.flat_map(one)
    return dataset.interleave(one, cycle_length=tf.data.AUTOTUNE, block_length=1,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class SkipCounter:
    """Counts and logs the examples a stream skipped (mask False where a real example was expected)."""

    def __init__(self, what: str):
        """`what` names the stream in the log ("training", "evaluation of validation")."""
        self.what = what
        self.count = 0

    def add(self, number: int, keys: list[str] | None = None) -> None:
        """Records `number` more skipped examples (with their file names or keys when known)."""
        if number <= 0:
            return
        self.count += number
        names = f": {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}" if keys else ""
        logging.warning("%s: skipped %d unreadable image(s)%s (%d so far)", self.what, number, names, self.count)


def counting_skips(batches: Iterator[dict[str, np.ndarray]], counter: SkipCounter) -> Iterator[dict[str, np.ndarray]]:
    """Passes training batches through, counting mask=False examples as skipped."""
    for batch in batches:
        if "mask" in batch and not batch["mask"].all():
            counter.add(int((~batch["mask"]).sum()))
        yield batch
