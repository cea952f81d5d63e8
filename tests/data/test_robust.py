"""robust.map_batches_filling_gaps: an example whose preprocessing fails keeps its slot as a masked stand-in, every
batch comes out whole and in order, even when all of its examples fail."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from imagenet_jax.data import robust

BATCH = 4
BAD = b"not an image"


def _jpeg(value: int) -> bytes:
    return tf.io.encode_jpeg(tf.fill((8, 8, 1), tf.constant(value, tf.uint8)), quality=100).numpy()


def _batches(images_per_batch: list[list[bytes]]) -> list[dict[str, np.ndarray]]:
    labels = np.arange(len(images_per_batch) * BATCH, dtype=np.int32).reshape(-1, BATCH)
    rows = tf.data.Dataset.from_tensor_slices({"image": images_per_batch, "label": labels})

    def decode(element):
        image = tf.ensure_shape(tf.io.decode_jpeg(element["image"], channels=1), (8, 8, 1))
        return {"image": image, "label": element["label"], "mask": tf.constant(True)}

    stand_in = {"image": tf.zeros((8, 8, 1), tf.uint8), "label": tf.constant(-1, tf.int32)}
    return list(robust.map_batches_filling_gaps(rows, decode, BATCH, stand_in).as_numpy_iterator())


def test_a_failed_example_becomes_a_masked_copy_of_the_next_good_one_of_its_batch():
    batch = _batches([[_jpeg(10), BAD, _jpeg(30), _jpeg(40)]])[0]
    assert batch["mask"].tolist() == [True, False, True, True]
    assert batch["label"].tolist() == [0, 2, 2, 3]  # slot 1 holds a copy of slot 2
    assert np.abs(batch["image"][:, 0, 0, 0].astype(int) - [10, 30, 30, 40]).max() <= 1


def test_failures_at_the_end_of_a_batch_or_of_all_of_it_keep_the_batch_whole():
    end, everything = _batches([[_jpeg(10), _jpeg(20), BAD, BAD], [BAD] * BATCH])
    assert end["mask"].tolist() == [True, True, False, False]
    assert end["label"].tolist() == [0, 1, -1, -1] and not end["image"][2:].any()  # the stand-in, zeros
    assert not everything["mask"].any() and everything["image"].shape == (BATCH, 8, 8, 1)
    assert not everything["image"].any()


def test_batches_come_in_order_with_their_own_examples():
    rows = [[_jpeg(index % 250)] * BATCH if index % 7 else [BAD, _jpeg(1), BAD, _jpeg(2)] for index in range(40)]
    batches = _batches(rows)
    assert len(batches) == 40
    for index, batch in enumerate(batches):
        if index % 7:
            assert batch["label"].tolist() == list(range(index * BATCH, (index + 1) * BATCH))
            assert batch["mask"].all()
        else:
            assert batch["mask"].tolist() == [False, True, False, True]
            assert batch["label"].tolist() == [index * BATCH + 1, index * BATCH + 1, index * BATCH + 3,
                                               index * BATCH + 3]
