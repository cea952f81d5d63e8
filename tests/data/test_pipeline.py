"""Input pipeline: every epoch a full permutation that is a function of (seed, epoch), the same global batches for
any process count, exact resume anywhere, exact eval counts, record-file damage named, and the preprocessing
ops measured against independent references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imagenet_jax.data import pipeline, records
from imagenet_jax.data import preprocessing as pp
from tests.data.conftest import IndexedInfo

CONTEXT = pp.PreprocessContext(image_size=28, crop_pct=1.0, channels=1)


@pytest.fixture(scope="module")
def info(fashion_mnist_dir):
    return pipeline.load_dataset("fashion_mnist", fashion_mnist_dir)


def test_fashion_mnist_is_prepared_offline_as_array_record_with_the_original_content(info):
    assert info.builder.info.file_format.value == records.ARRAY_RECORD
    assert info.num_classes == 10 and info.channels == 1
    assert info.num_examples("train") == 60_000 and info.num_examples("test") == 10_000
    assert info.class_names[0] == "T-shirt/top"
    # The IDX files' first training label is 9 (ankle boot); TFDS stores examples shuffled, so count instead.
    np.testing.assert_array_equal(np.bincount(info.labels("test"), minlength=10), [1000] * 10)


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
    # Same labels, in the same order, as the split itself: nothing scored twice, nothing dropped.
    np.testing.assert_array_equal(np.concatenate(labels), info.labels("test[:2500]"))


class _CountingReads:
    """A record reader that counts the records read through it."""

    def __init__(self, reader):
        self.reader, self.reads = reader, 0

    def __len__(self):
        return len(self.reader)

    def read(self, indices):
        self.reads += len(indices)
        return self.reader.read(indices)


class _ServingSource:
    """A dataset info whose every split is served by `source`."""

    def __init__(self, info, source):
        self._info, self._source = info, source

    def source(self, split):
        return self._source

    def __getattr__(self, name):
        return getattr(self._info, name)


@pytest.mark.parametrize("batch_size", [250, 300], ids=["fills_batches", "padded"])
def test_a_cached_eval_set_is_read_once_and_served_identically_from_memory(info, batch_size):
    from imagenet_jax.data import sources

    split = info.source("test[:1000]")
    reader = _CountingReads(split.reader)
    make_batches = pipeline.eval_batches(
        _ServingSource(info, sources.RecordSource(reader, split.features)), "test[:1000]",
        local_batch_size=batch_size, preprocess=pp.build("", CONTEXT), cache=True)
    passes = [[batch["image"][batch["mask"]] for batch in make_batches()] for _ in range(3)]
    assert reader.reads == 1000, "the second and third passes must come from the cache, not the records"
    assert sum(len(images) for images in passes[0]) == 1000
    for later in passes[1:]:
        np.testing.assert_array_equal(np.concatenate(later), np.concatenate(passes[0]))


def _train_stream(info, start_step, seed=0, process_index=0, process_count=1, batch_size=500, cache=False):
    return pipeline.train_batches(
        info, global_batch_size=batch_size, seed=seed, start_step=start_step,
        preprocess=pp.build("random_crop_pad(2)|flip_lr", CONTEXT), cache=cache,
        process_index=process_index, process_count=process_count)


def test_training_stream_resumes_exactly_anywhere_including_at_90_percent_of_an_epoch(info):
    steps_per_epoch = pipeline.steps_per_epoch(info, 500)
    assert steps_per_epoch == 120 and info.num_examples("train") >= 20_000
    uninterrupted = _train_stream(info, 0)
    batches = [next(uninterrupted) for _ in range(steps_per_epoch + 2)]
    for start in (7, int(0.9 * steps_per_epoch), steps_per_epoch - 1, steps_per_epoch + 1):
        resumed = next(_train_stream(info, start))
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(resumed[key], batches[start][key], err_msg=f"step {start}")
    assert not np.array_equal(batches[0]["image"], batches[steps_per_epoch]["image"]), "epochs differ"


def test_cached_stream_is_the_uncached_stream(info):
    info = dataclasses.replace(info, train_split="train[:6000]")  # a cache of 6,000 decodes in a second
    for start in (0, 11):
        cached, read = next(_train_stream(info, start, cache=True)), next(_train_stream(info, start))
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(cached[key], read[key])


class _OneGarbageImage:
    """A record reader that serves a real split with record `bad` replaced by an undecodable image."""

    def __init__(self, reader, bad: int):
        self.reader, self.bad = reader, bad

    def __len__(self):
        return len(self.reader)

    def read(self, indices):
        import tensorflow as tf

        garbage = tf.train.Example(features=tf.train.Features(feature={
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"not a png"])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))})).SerializeToString()
        records = self.reader.read(indices)
        return [garbage if index == self.bad else record for index, record in zip(indices, records, strict=True)]


def test_the_cache_decodes_records_in_batches_and_keeps_an_undecodable_one_as_a_masked_stand_in(info):
    from imagenet_jax.data import sources
    from imagenet_jax.data.preprocessing import decode

    good = info.source("train[:3000]")
    decode_one = lambda image: decode(image, 1)  # noqa: E731
    batched = sources._decode_record_batches(good, decode_one)
    one_by_one = sources._decode_examples(good, decode_one)
    for key in ("pixels", "shape", "label", "mask"):
        np.testing.assert_array_equal(np.concatenate(batched[key]), np.concatenate(one_by_one[key]), err_msg=key)
    clean = sources.cached(good, 1)

    damaged = sources.RecordSource(_OneGarbageImage(good.reader, 1234), good.features)
    cache = sources.cached(damaged, 1)  # the batched decode fails, the example-by-example one keeps the slot
    masks, labels = np.asarray(cache.masks), np.asarray(cache.labels)
    assert cache.num_examples == 3000 and np.flatnonzero(~masks).tolist() == [1234]
    np.testing.assert_array_equal(np.delete(labels, 1234), np.delete(np.asarray(clean.labels), 1234))
    np.testing.assert_array_equal(np.asarray(cache.pixels)[:1234 * 784], np.asarray(clean.pixels)[:1234 * 784])


def test_seeds_differ(info):
    assert not np.array_equal(next(_train_stream(info, 0))["label"], next(_train_stream(info, 0, seed=1))["label"])


def test_global_batches_are_identical_for_every_process_count_by_default(info):
    one_process = next(_train_stream(info, 3, batch_size=400))
    for count in (2, 4):
        parts = [next(_train_stream(info, 3, process_index=i, process_count=count, batch_size=400))
                 for i in range(count)]
        assert parts[0]["image"].shape[0] == 400 // count
        for key in ("image", "label"):
            np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), one_process[key])


def test_tensorflow_global_seed_does_not_change_the_stream(info):
    import tensorflow as tf

    reference = next(_train_stream(info, 5))
    tf.random.set_seed(0)  # what keras.utils.set_random_seed(0) does
    try:
        with_global_seed = next(_train_stream(info, 5))
    finally:
        tf.random.set_seed(None)
    np.testing.assert_array_equal(with_global_seed["image"], reference["image"])


def _indices(stream, steps: int) -> np.ndarray:
    return np.concatenate([next(stream)["label"] for _ in range(steps)])


def _order(size, batch_size, steps, seed=0, process_index=0, process_count=1, start_step=0):
    return _indices(pipeline.train_batches(
        IndexedInfo(size), global_batch_size=batch_size, seed=seed, start_step=start_step,
        preprocess=pp.build("", pp.PreprocessContext(image_size=2, crop_pct=1.0, channels=1)), cache=False,
        process_index=process_index, process_count=process_count), steps)


def test_every_epoch_is_a_full_permutation_and_consecutive_epochs_differ():
    size, batch_size = 1000, 50
    order = _order(size, batch_size, steps=3 * size // batch_size)
    epochs = order.reshape(3, size)
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(size))  # every index exactly once
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    # Not a near-identity: an epoch's order is unrelated to the stored order and to the previous epoch's.
    assert abs(np.corrcoef(epochs[0], np.arange(size))[0, 1]) < 0.1
    assert abs(np.corrcoef(epochs[0], epochs[1])[0, 1]) < 0.1
    np.testing.assert_array_equal(_order(size, batch_size, steps=2, start_step=25), epochs[1][250:350])


def test_an_epoch_leaves_out_a_different_remainder_each_time():
    size, batch_size = 1005, 100  # 10 steps per epoch use 1000 of the 1005 examples
    epochs = _order(size, batch_size, steps=20).reshape(2, 1000)
    assert all(len(np.unique(epoch)) == 1000 for epoch in epochs)
    assert set(range(size)) - set(epochs[0]) != set(range(size)) - set(epochs[1])


def test_processes_read_disjoint_example_ids_that_make_up_the_global_batch():
    size, batch_size, steps = 400, 40, 4
    global_order = _order(size, batch_size, steps).reshape(steps, batch_size)
    for count in (4,):  # (2 processes: test_global_batches_are_identical_for_every_process_count_by_default)
        parts = [_order(size, batch_size, steps, process_index=i, process_count=count).reshape(steps, -1)
                 for i in range(count)]
        for step in range(steps):
            ids = [set(part[step]) for part in parts]
            assert sum(map(len, ids)) == batch_size and len(set().union(*ids)) == batch_size, "disjoint"
            np.testing.assert_array_equal(np.concatenate([part[step] for part in parts]), global_order[step])


def test_a_corrupted_record_file_stops_with_its_name_and_the_prepare_command(fashion_mnist_dir, tmp_path):
    import re
    import shutil

    data_dir = tmp_path / "tfds"
    shutil.copytree(fashion_mnist_dir, data_dir)
    info = pipeline.load_dataset("fashion_mnist", str(data_dir))
    path = str(info.builder.info.splits["test"].filepaths[0])
    content = bytearray(open(path, "rb").read())
    content[len(content) // 3 : len(content) // 3 + 64] = b"x" * 64  # bytes flipped on disk
    with open(path, "wb") as stream:
        stream.write(bytes(content))
    batches = pipeline.eval_batches(info, "test", local_batch_size=500, preprocess=pp.build("", CONTEXT), cache=False)
    with pytest.raises(records.CorruptShardError) as caught:
        for _ in batches():
            pass
    message = str(caught.value)
    assert path in message
    assert f"python -m imagenet_jax.prepare --dataset fashion_mnist --data_dir {data_dir} --overwrite" in message
    with open(path, "wb") as stream:  # cut short (an interrupted copy): also named
        stream.write(bytes(content[: len(content) // 2]))
    reader = records.RecordReader(info.builder.info.splits["test"].file_instructions, "fashion_mnist", str(data_dir))
    with pytest.raises(records.CorruptShardError, match=f"{re.escape(path)} cannot be read"):
        reader.read(np.array([0]))


def test_data_prepared_in_the_old_tfrecord_format_is_refused_then_converted_by_one_command(fashion_mnist_dir,
                                                                                             tmp_path):
    import json
    import pathlib
    import subprocess
    import sys

    import tensorflow as tf
    from array_record.python import array_record_module

    from imagenet_jax.errors import DatasetNotPreparedError
    from tests.conftest import REPO

    # A TFRecord-format copy of the prepared dataset's test split, as older versions of this project wrote it.
    source_dir = pathlib.Path(pipeline.load_dataset("fashion_mnist", fashion_mnist_dir).builder.data_dir)
    old_dir = tmp_path / "fashion_mnist" / source_dir.name
    old_dir.mkdir(parents=True)
    for entry in source_dir.iterdir():
        if "-train." in entry.name:
            continue
        if ".array_record-" in entry.name:
            reader = array_record_module.ArrayRecordReader(str(entry))
            with tf.io.TFRecordWriter(str(old_dir / entry.name.replace(".array_record-", ".tfrecord-"))) as writer:
                for record in reader.read_all():
                    writer.write(record)
        elif entry.name == "dataset_info.json":
            info_json = json.loads(entry.read_text())
            splits = [split for split in info_json["splits"] if split["name"] == "test"]
            (old_dir / entry.name).write_text(json.dumps({**info_json, "fileFormat": "tfrecord", "splits": splits}))
        else:
            (old_dir / entry.name).write_bytes(entry.read_bytes())

    command = f"python -m imagenet_jax.prepare --dataset fashion_mnist --data_dir {tmp_path} --convert"
    with pytest.raises(DatasetNotPreparedError, match="tfrecord") as caught:
        pipeline.load_dataset("fashion_mnist", str(tmp_path))
    assert command in str(caught.value)
    result = subprocess.run([sys.executable, *command.split()[1:]], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fashion_mnist: test 10000" in result.stdout
    assert not any(".tfrecord-" in name.name for name in old_dir.iterdir())
    converted = pipeline.load_dataset("fashion_mnist", str(tmp_path))
    original = pipeline.load_dataset("fashion_mnist", fashion_mnist_dir)
    np.testing.assert_array_equal(converted.labels("test"), original.labels("test"))


def _torchvision_crop_sizes(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """(h, w) of `count` windows drawn as torchvision's RandomResizedCrop.get_params draws them (10 tries)."""
    sizes = []
    for _ in range(count):
        for _ in range(10):
            area = height * width * rng.uniform(0.08, 1.0)
            ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w, h = round(np.sqrt(area * ratio)), round(np.sqrt(area / ratio))
            if 0 < w <= width and 0 < h <= height:
                break
        else:  # 4:3 images stay within the ratio range: the fallback is the whole image
            h, w = height, width
        sizes.append((h, w))
    return np.array(sizes, float)


def test_inception_crop_windows_cover_the_published_area_and_ratio_ranges():
    import tensorflow as tf

    height, width = 375, 500
    seeds = tf.stack([tf.zeros(10_000, tf.int64), tf.range(10_000, dtype=tf.int64)], axis=1)
    windows = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda seed: pp.inception_crop_window(tf.constant([height, width, 3]), seed)).batch(10_000)
    y, x, h, w = next(iter(windows)).numpy().T.astype(float)
    assert (y >= 0).all() and (x >= 0).all() and (y + h <= height).all() and (x + w <= width).all()
    area, ratio = h * w / (height * width), w / h
    # Published ranges (Szegedy et al. 2015; torchvision RandomResizedCrop): area 8%-100%, aspect 3/4-4/3; the
    # window is rounded to whole pixels, hence the small tolerances.
    assert 0.079 <= area.min() < 0.085 and 0.95 < area.max() <= 1.0
    assert 0.745 <= ratio.min() < 0.76 and 1.32 < ratio.max() <= 1.34
    # The distributions match torchvision's sampler (re-implemented above with numpy's generator): large
    # areas at extreme ratios do not fit and are drawn again, so the mean area is ~0.43, not 0.54.
    ref_h, ref_w = _torchvision_crop_sizes(np.random.default_rng(0), 10_000, height, width).T
    ref_area, ref_log_ratio = ref_h * ref_w / (height * width), np.log(ref_w / ref_h)
    assert area.mean() == pytest.approx(ref_area.mean(), abs=0.01)
    assert np.quantile(area, [0.1, 0.5, 0.9]) == pytest.approx(np.quantile(ref_area, [0.1, 0.5, 0.9]), abs=0.02)
    assert np.log(ratio).mean() == pytest.approx(ref_log_ratio.mean(), abs=0.01)
    assert np.log(ratio).std() == pytest.approx(ref_log_ratio.std(), rel=0.03)
    # Crop positions uniform over the free space: mean offset at the middle of it.
    assert (y / np.maximum(height - h, 1))[h < height].mean() == pytest.approx(0.5, abs=0.02)


def test_eval_center_crop_equals_an_independent_resize_then_crop_reference():
    import tensorflow as tf
    from PIL import Image

    # A smooth image (sub-pixel differences between resamplers stay small), landscape 400x300.
    yy, xx = np.mgrid[0:300, 0:400].astype(float)
    pixels = np.stack([127 + 120 * np.sin(xx / 37.0) * np.cos(yy / 23.0), 255 * xx / 400, 255 * yy / 300],
                      axis=-1).round().astype(np.uint8)
    context = pp.PreprocessContext(image_size=224, crop_pct=0.875, channels=3, antialias=True)
    out = pp.build("resize_center_crop", context)(tf.constant(pixels), tf.zeros(2, tf.int64)).numpy()
    assert out.shape == (224, 224, 3)
    # torchvision's eval transform, done with PIL: Resize(256) on the short side, then CenterCrop(224).
    resized = Image.fromarray(pixels).resize((round(400 * 256 / 300), 256), Image.BILINEAR)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    reference = np.asarray(resized.crop((left, top, left + 224, top + 224))).astype(float)
    error = np.abs(out.astype(float) - reference)
    assert error.mean() < 1.0 and np.percentile(error, 99) < 4
    # The comparison is sharp: the same image without the center crop is far off.
    squashed = np.asarray(Image.fromarray(pixels).resize((224, 224), Image.BILINEAR)).astype(float)
    assert np.abs(out.astype(float) - squashed).mean() > 10
