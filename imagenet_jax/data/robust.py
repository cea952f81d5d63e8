"""Corrupt or truncated images never stop a run: the example is skipped, counted and logged, and the stream keeps
its positions, so batches and resumes stay exactly what they would have been.

Training (`map_filling_gaps`): preprocessing errors drop the example (tf.data's ignore_errors) and a scan puts a
stand-in into its slot: a copy of the next good example with mask=False, which the loss ignores. Batches keep
positions [s*B, (s+1)*B) whatever fails, at the cost of one cheap scan. Evaluation and one-time decoding
(`map_or_placeholder`): every element yields exactly one output, the mapped one or a placeholder that keeps the
element's key for the log; slower per element, used where it does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from absl import logging


def map_filling_gaps(dataset, fn: Callable, first_position: int):
    """Maps `fn` over elements {"position", ...} (positions consecutive from `first_position`); failed elements
    become mask=False copies of the next good one. `fn` returns a dict with a boolean "mask"."""
    import tensorflow as tf

    mapped = dataset.map(lambda element: {**fn(element), "position": element["position"]},
                         num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()

    def fill(expected, element):
        gap = element["position"] - expected
        body = {key: value for key, value in element.items() if key != "position"}

        def with_stand_ins():
            out = {key: tf.repeat(value[None], gap + 1, axis=0) for key, value in body.items()}
            out["mask"] = tf.concat([tf.zeros([gap], tf.bool), body["mask"][None]], axis=0)
            return out

        out = tf.cond(gap > 0, with_stand_ins, lambda: {key: value[None] for key, value in body.items()})
        return element["position"] + 1, out

    return mapped.scan(tf.constant(first_position, tf.int64), fill).unbatch()


def map_or_placeholder(dataset, fn: Callable, placeholder: Callable, parallel: bool = True):
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
