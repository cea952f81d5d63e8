"""Input pipeline: exact eval counts for any batch and process count; training stream resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest

from imagenet_jax.data import pipeline
from imagenet_jax.data import preprocessing as pp


@pytest.fixture(scope="module")
def info(fashion_mnist_dir):
    return pipeline.load_dataset("fashion_mnist", fashion_mnist_dir)


CONTEXT = pp.PreprocessContext(image_size=28, crop_pct=1.0, channels=1)


def test_fashion_mnist_is_prepared_offline_with_the_original_content(info):
    assert info.num_classes == 10 and info.channels == 1
    assert info.num_examples("train") == 60_000 and info.num_examples("test") == 10_000
    assert info.class_names[0] == "T-shirt/top"


@pytest.mark.parametrize("batch_size, process_count", [(256, 1), (1000, 1), (333, 3), (64, 8)])
def test_eval_scores_every_example_exactly_once(info, batch_size, process_count):
    labels, masks, batches_per_process = [], [], []
    for process_index in range(process_count):
        make_batches = pipeline.eval_batches(
            info, "test[:2500]", local_batch_size=batch_size // process_count if process_count > 1 else batch_size,
            preprocess=pp.build("", CONTEXT), cache=False, process_index=process_index, process_count=process_count)
        count = 0
        for batch in make_batches():
            labels.append(batch["label"][batch["mask"]])
            masks.append(batch["mask"])
            count += 1
        batches_per_process.append(count)
    assert len(set(batches_per_process)) == 1, "every process must run the same number of eval steps"
    assert int(np.concatenate(masks).sum()) == 2500
    # Same multiset of labels as the split itself: nothing scored twice, nothing dropped.
    reference = np.concatenate([b["label"] for b in pipeline.eval_batches(
        info, "test[:2500]", local_batch_size=2500, preprocess=pp.build("", CONTEXT), cache=False)()])
    np.testing.assert_array_equal(np.bincount(np.concatenate(labels), minlength=10),
                                  np.bincount(reference, minlength=10))


def _train_stream(info, start_step, seed=0, process_index=0, process_count=1, num_shards=0, batch_size=500):
    return pipeline.train_batches(
        info, global_batch_size=batch_size, seed=seed, start_step=start_step,
        preprocess=pp.build("random_crop_pad(2)|flip_lr", CONTEXT), shuffle_buffer_size=4096, cache=False,
        process_index=process_index, process_count=process_count, num_shards=num_shards)


def test_training_stream_resumes_exactly_mid_epoch_and_across_epochs(info):
    steps_per_epoch = pipeline.steps_per_epoch(info, 500, 1)
    assert steps_per_epoch == 120
    uninterrupted = _train_stream(info, 0)
    batches = [next(uninterrupted) for _ in range(steps_per_epoch + 3)]
    for start in (7, steps_per_epoch - 1, steps_per_epoch + 1):
        resumed = next(_train_stream(info, start))
        np.testing.assert_array_equal(resumed["image"], batches[start]["image"])
        np.testing.assert_array_equal(resumed["label"], batches[start]["label"])


def test_epochs_differ_and_seeds_differ(info):
    stream = _train_stream(info, 0)
    first = next(stream)["label"]
    next_epoch = next(_train_stream(info, 120))["label"]
    other_seed = next(_train_stream(info, 0, seed=1))["label"]
    assert not np.array_equal(first, next_epoch)
    assert not np.array_equal(first, other_seed)


def test_process_shards_are_disjoint(info):
    per_process = [next(_train_stream(info, 0, process_index=i, process_count=2, batch_size=1000))["image"]
                   for i in range(2)]
    assert not np.array_equal(per_process[0], per_process[1])


def test_fixed_data_shards_make_global_batches_independent_of_process_count(info):
    one_process = next(_train_stream(info, 3, num_shards=4, batch_size=400))
    four_processes = [next(_train_stream(info, 3, process_index=i, process_count=4, num_shards=4, batch_size=400))
                      for i in range(4)]
    two_processes = [next(_train_stream(info, 3, process_index=i, process_count=2, num_shards=4, batch_size=400))
                     for i in range(2)]
    for parts in (four_processes, two_processes):
        for key in ("image", "label"):
            np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), one_process[key])


def test_random_resized_crop_covers_the_published_area_and_ratio_ranges():
    import tensorflow as tf

    context = pp.PreprocessContext(image_size=32, crop_pct=0.875, channels=3)
    image = tf.io.encode_jpeg(tf.cast(tf.random.stateless_uniform((300, 400, 3), (1, 2), 0, 255), tf.uint8))
    crop = pp.build("random_resized_crop", context)
    outputs = [crop(image, tf.constant([0, i], tf.int64)).numpy() for i in range(4)]
    assert all(out.shape == (32, 32, 3) and out.dtype == np.uint8 for out in outputs)
    assert not np.array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[2], crop(image, tf.constant([0, 2], tf.int64)).numpy())


def test_eval_center_crop_equals_resize_then_crop_reference():
    import tensorflow as tf

    context = pp.PreprocessContext(image_size=224, crop_pct=0.875, channels=3, antialias=True)
    pixels = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    out = pp.build("resize_center_crop", context)(tf.constant(pixels), tf.zeros(2, tf.int64)).numpy()
    # 300 px short side * 0.875 = 262.5 -> a centered 262 px square, resized to 224.
    assert out.shape == (224, 224, 3)
    center = pixels[19:281, 69:331]
    expected = tf.image.resize(center, (224, 224), antialias=True).numpy()
    assert np.abs(out.astype(float) - expected).mean() < 1.0


def test_tensorflow_global_seed_does_not_change_the_stream(info):
    import tensorflow as tf

    reference = next(_train_stream(info, 5))
    tf.random.set_seed(0)  # what keras.utils.set_random_seed(0) does
    try:
        with_global_seed = next(_train_stream(info, 5))
    finally:
        tf.random.set_seed(None)
    np.testing.assert_array_equal(with_global_seed["image"], reference["image"])
