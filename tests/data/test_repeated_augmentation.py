"""Repeated augmentation (config.aug_repeats): each image of an epoch-slot shows up k times, as copies cropped from
one decode of the whole image with their own seeds; exact counts, the same examples for any process count, exact
resume, copies spread over the batch, and an unreadable image masks exactly its own copies."""

from __future__ import annotations

import numpy as np
import pytest

from imagenet_jax.config import get_base_config
from imagenet_jax.data import inputs, pipeline
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from tests.data.conftest import FOLDER_BAD_TRAIN, IndexedInfo

K = 3


def _unspread(labels: np.ndarray, repeats: int = K) -> np.ndarray:
    """Stream order of one local batch (undoes repeated_augmentation.spread)."""
    order = np.concatenate([np.arange(r, len(labels), repeats) for r in range(repeats)])
    out = np.empty_like(labels)
    out[order] = labels
    return out


def _stream_order(size: int, batch_size: int, steps: int, process_index: int = 0, process_count: int = 1,
                  start_step: int = 0) -> np.ndarray:
    """[steps, local batch] record indices in stream order."""
    stream = pipeline.train_batches(
        IndexedInfo(size), global_batch_size=batch_size, seed=0, start_step=start_step,
        preprocess=pp.build("", pp.PreprocessContext(image_size=2, crop_pct=1.0, channels=1)), cache=False,
        aug_repeats=K, process_index=process_index, process_count=process_count)
    return np.stack([_unspread(next(stream)["label"]) for _ in range(steps)])


def test_an_epoch_shows_a_third_of_the_images_three_times_each_in_consecutive_positions():
    size, batch_size = 999, 50  # 19 steps use 950 positions: 316 groups of 3 and one of 2 (950 = 316 * 3 + 2)
    order = _stream_order(size, batch_size, steps=19).reshape(-1)
    groups = [order[start:start + K] for start in range(0, len(order), K)]
    assert all(len(set(group)) == 1 for group in groups), "a group's copies are consecutive in the stream"
    assert len({int(group[0]) for group in groups}) == len(groups) == 317, "every group a different image"
    counts = np.bincount(order, minlength=size)
    assert int((counts == 3).sum()) == 316 and int((counts == 2).sum()) == 1 and int((counts == 0).sum()) == 682
    # Groups straddle batches (50 is not a multiple of 3): step 1 starts with the last 1 copy of group 16.
    assert order[50] == order[49] == order[48] != order[51]


def test_the_examples_do_not_depend_on_the_process_count_and_resume_is_exact():
    size, batch_size = 999, 50  # 2 processes of 25: groups straddle the processes' slices too
    one = _stream_order(size, batch_size, steps=6)
    two = [_stream_order(size, batch_size, steps=6, process_index=index, process_count=2) for index in range(2)]
    np.testing.assert_array_equal(np.concatenate(two, axis=1), one)
    np.testing.assert_array_equal(_stream_order(size, batch_size, steps=2, start_step=4), one[4:6])
    next_epoch = _stream_order(size, batch_size, steps=1, start_step=19)[0]
    assert len(set(next_epoch) & set(one.reshape(-1))) < 25, "the next epoch picks other images"


def test_copies_of_an_image_are_spread_over_the_batch():
    batch_size = 48
    stream = pipeline.train_batches(
        IndexedInfo(999), global_batch_size=batch_size, seed=0, start_step=0,
        preprocess=pp.build("", pp.PreprocessContext(image_size=2, crop_pct=1.0, channels=1)), cache=False,
        aug_repeats=K)
    labels = next(stream)["label"]
    # Each third of the batch (one device's share on 3 devices) holds 16 different images, one copy each.
    for third in labels.reshape(K, batch_size // K):
        assert len(set(third)) == batch_size // K
    np.testing.assert_array_equal(np.sort(labels[:16]), np.sort(labels[16:32]))


def _folder_config(image_folder: str, seed: int = 0):
    config = get_base_config()
    config.update(dataset=f"folder:{image_folder}", batch_size=12, image_size=32, aug_repeats=K, seed=seed)
    return config


def _expected_records(info, seed: int, groups: int, epoch: int = 0) -> np.ndarray:
    import tensorflow as tf

    last = info.num_examples(info.train_split) - 1
    return np.array([int(tf.random.experimental.index_shuffle(tf.constant(group, tf.int64),
                                                             tf.constant([seed, epoch], tf.int64), last))
                     for group in range(groups)])


def test_copies_are_crops_of_one_whole_image_decode_each_with_its_own_seed(image_folder):
    import tensorflow as tf

    config = _folder_config(image_folder)
    info = pipeline.load_dataset(config.dataset, "")
    stream = inputs.train_stream(config, info, start_step=0, steps_per_epoch=pipeline.steps_per_epoch(info, 12))
    batch = {key: _unspread(value) for key, value in next(stream).items()}
    paths = info.source(info.train_split).paths.numpy()
    records = _expected_records(info, config.seed, groups=4)
    preprocess = pp.build(inputs.train_chain(config), inputs.context(config, 32, 3))
    checked = 0
    for position in range(12):
        path = paths[records[position // K]].decode()
        if any(path.endswith(bad) for bad in FOLDER_BAD_TRAIN):
            continue
        whole = pp.decode(tf.io.read_file(path), 3)
        expected = preprocess(whole, tf.constant([config.seed, position], tf.int64)).numpy()
        np.testing.assert_array_equal(batch["image"][position], expected, err_msg=f"copy {position}")
        checked += 1
    assert checked >= 9
    assert not np.array_equal(batch["image"][0], batch["image"][1]), "copies are augmented differently"


def test_an_unreadable_image_masks_exactly_its_own_copies(image_folder):
    info = pipeline.load_dataset(f"folder:{image_folder}", "")
    paths = [path.decode() for path in info.source(info.train_split).paths.numpy()]
    bad = {index for index, path in enumerate(paths) if any(path.endswith(name) for name in FOLDER_BAD_TRAIN)}
    groups = 3 * 12 // K  # one epoch: 3 steps of 12
    seed = next(seed for seed in range(50) if bad & set(_expected_records(info, seed, groups)))
    records = _expected_records(info, seed, groups)
    config = _folder_config(image_folder, seed)
    stream = inputs.train_stream(config, info, start_step=0, steps_per_epoch=pipeline.steps_per_epoch(info, 12))
    masks = np.concatenate([_unspread(next(stream)["mask"]) for _ in range(3)])
    expected = np.repeat([record not in bad for record in records], K)
    np.testing.assert_array_equal(masks, expected)
    assert 0 < int((~masks).sum()) <= 2 * K


@pytest.mark.parametrize("value", [0, -1])
def test_aug_repeats_below_one_is_refused_naming_the_key(value):
    config = get_base_config()
    config.aug_repeats = value
    with pytest.raises(ConfigError, match=r"config\.aug_repeats=-?\d must be an integer >= 1"):
        validate_config(config, 1)
