"""Repeated augmentation (Hoffer et al. 2020, "Augment your batch"; Berman et al. 2019; DeiT and ResNet strikes back
A1/A2 use 3 repeats): each image is seen k times per epoch-slot, as k differently augmented copies.

Order. An epoch's positions are grouped in runs of k: in-epoch position q shows copy q mod k of group q // k, and
group g reads record index_shuffle(g, (seed, epoch), N - 1), so an epoch of steps_per_epoch x B positions shows
about N / k distinct images, k times each (as timm's RepeatAugSampler). Copy q is augmented with the seed
(seed, global position of q), exactly as without repeats. A group may straddle two batches or two processes'
slices; each side makes only the copies it holds.

Cost. The point of grouping: the copies of a group are made from one decode (a JPEG is decoded once, whole, at
full scale, then cropped k times), so k examples cost one decode plus k crops and resizes.

Layout. Within this process's batch the copies are spread out (positions i = r (mod k) first, for r = 0..k-1), so
each device's share of the batch, and each BN group, sees different images, as timm's sampler spreads copies over
GPUs. That layout, unlike the examples, depends on the process count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from imagenet_jax.data import preprocessing, robust

if TYPE_CHECKING:
    import tensorflow as tf


def examples(source, preprocess: Callable, blank: tf.Tensor, *, repeats: int, local_batch_size: int,
             global_batch_size: int, batches_per_epoch: int, seed: int, steps: tuple[int, int], process_index: int,
             channels: int) -> tf.data.Dataset:
    """This process's training examples {"image", "label", "mask"} of steps [start, end), `repeats` copies per
    decoded image, in stream order (batch them by local_batch_size); `blank`: an output-shaped image."""
    import tensorflow as tf

    groups_per_step = -(-local_batch_size // repeats) + 1  # the most groups that local_batch_size positions touch
    last_index = tf.constant(source.num_examples - 1, tf.int64)
    seed64 = tf.constant(seed, tf.int64)

    def locate(position):
        """(epoch, in-epoch position of the group's first copy, of this process's step's first example)."""
        step, slot = position // groups_per_step, position % groups_per_step
        epoch, batch_in_epoch = step // batches_per_epoch, step % batches_per_epoch
        first = batch_in_epoch * global_batch_size + process_index * local_batch_size
        return epoch, (first // repeats + slot) * repeats, first

    def kept_copies(position):
        """Which of the group's copies this process's step holds."""
        _, group_start, first = locate(position)
        copy = tf.range(repeats, dtype=tf.int64) + group_start
        return (copy >= first) & (copy < first + local_batch_size)

    def step_groups(step):
        position = step * groups_per_step + tf.range(groups_per_step, dtype=tf.int64)
        epoch, group_start, _ = locate(position)
        record = tf.random.experimental.index_shuffle(
            tf.minimum(group_start // repeats, last_index), tf.stack([seed64, epoch[0]]), last_index)
        epoch_start = epoch * batches_per_epoch * global_batch_size
        return {"position": position, "global_position": epoch_start + group_start, **source.fetch(record)}

    def augment_copies(element):
        kept = kept_copies(element["position"])
        example = source.example(element)
        # One decode for every copy; a group this step holds no copy of is not decoded at all.
        image = tf.cond(tf.reduce_any(kept), lambda: preprocessing.decode(example["image"], channels),
                        lambda: tf.zeros((1, 1, channels), tf.uint8))
        copies = []
        for copy in range(repeats):
            copy_seed = tf.stack([seed64, element["global_position"] + copy])
            copies.append(tf.cond(kept[copy], lambda copy_seed=copy_seed: preprocess(image, copy_seed),
                                  lambda: blank))
        mask = tf.fill([repeats], tf.cast(example.get("mask", tf.constant(True)), tf.bool))
        return {"image": tf.stack(copies), "label": tf.fill([repeats], tf.cast(example["label"], tf.int32)),
                "mask": mask}

    def held_copies(element):  # from the slot's position: a stand-in for a failed group has its own slot
        return {**{key: value for key, value in element.items() if key != "position"},
                "kept": kept_copies(element["position"])}

    groups = tf.data.Dataset.range(*steps).map(step_groups, num_parallel_calls=tf.data.AUTOTUNE)
    groups = robust.map_filling_gaps(groups.unbatch(), augment_copies, steps[0] * groups_per_step,
                                     keep_position=True)
    copies = groups.map(held_copies).unbatch().filter(lambda copy: copy["kept"])
    return copies.map(lambda copy: {key: value for key, value in copy.items() if key != "kept"})


def spread(repeats: int, local_batch_size: int) -> Callable[[dict], dict]:
    """A batch map that moves the copies of one image apart: positions r, r+k, r+2k, ... first, for r = 0..k-1."""
    import tensorflow as tf

    order = tf.constant(np.concatenate([np.arange(r, local_batch_size, repeats) for r in range(repeats)]))
    return lambda batch: {key: tf.gather(value, order) for key, value in batch.items()}
