"""Image-folder datasets: Keras-style layout, a training order that mixes the classes from the first batch (not the
sorted order through a buffer), unreadable files skipped without moving any other example, exact resume
mid-epoch with every augmentation op on."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from imagenet_jax.data import folders, pipeline
from imagenet_jax.data import preprocessing as pp
from tests.data.conftest import (
    FOLDER_BAD_TRAIN,
    FOLDER_BAD_VAL,
    FOLDER_CLASSES,
    FOLDER_TRAIN_PER_CLASS,
    FOLDER_VAL_PER_CLASS,
)

CONTEXT = pp.PreprocessContext(image_size=32, crop_pct=0.875, channels=3)
AUGMENTED = ("random_resized_crop|flip_lr|random_affine(10.0, 0.1, 0.1, 0.2, 5.0)|randaugment(2, 9)"
             "|color_jitter(0.4)|random_erasing(0.5)")
TRAIN_SIZE = len(FOLDER_CLASSES) * FOLDER_TRAIN_PER_CLASS


def _info(root):
    return pipeline.load_dataset(f"folder:{root}", data_dir="")


def _stream(info, start_step, chain="random_resized_crop|flip_lr", batch_size=8, seed=0, **kwargs):
    return pipeline.train_batches(info, global_batch_size=batch_size, seed=seed, start_step=start_step,
                                  preprocess=pp.build(chain, CONTEXT), cache=False, **kwargs)


def test_folder_layout_is_read_like_keras(image_folder):
    info = _info(image_folder)
    assert info.class_names == FOLDER_CLASSES and info.num_classes == 4
    assert (info.train_split, info.eval_split) == ("train", "val")
    assert info.num_examples("train") == TRAIN_SIZE and info.num_examples("val") == 4 * FOLDER_VAL_PER_CLASS
    paths, labels = info.files("train")
    assert list(paths) == sorted(paths), "files in class order, then name order"
    np.testing.assert_array_equal(np.bincount(labels), [FOLDER_TRAIN_PER_CLASS] * 4)
    assert all(path.endswith((".jpg", ".png")) for path in paths)


def test_holdout_partitions_the_split(image_folder):
    info = _info(image_folder)
    all_paths = set(info.files("train")[0])
    kept, held_out = info.holdout("train", 7)
    kept_paths, held_paths = set(info.files(kept)[0]), set(info.files(held_out)[0])
    assert len(held_paths) == 7 and kept_paths | held_paths == all_paths and not kept_paths & held_paths
    assert set(_info(image_folder).files(held_out)[0]) == held_paths, "the holdout never moves"


def test_unreadable_training_images_are_skipped_in_place(image_folder, clean_image_folder, caplog):
    bad, clean = _info(image_folder), _info(clean_image_folder)
    steps = TRAIN_SIZE // 8  # one epoch: every file once
    with caplog.at_level(logging.WARNING):
        bad_batches = [next(batches) for batches in [_stream(bad, 0)] for _ in range(steps)]
    clean_batches = [next(batches) for batches in [_stream(clean, 0)] for _ in range(steps)]
    masks = np.concatenate([batch["mask"] for batch in bad_batches])
    assert int((~masks).sum()) == len(FOLDER_BAD_TRAIN)
    assert all(batch["mask"].all() for batch in clean_batches)
    for got, want in zip(bad_batches, clean_batches):
        # Every other example is exactly where and what it would be without the bad files.
        np.testing.assert_array_equal(got["image"][got["mask"]], want["image"][got["mask"]])
        np.testing.assert_array_equal(got["label"][got["mask"]], want["label"][got["mask"]])
    skipped = [record.getMessage() for record in caplog.records if "unreadable" in record.getMessage()]
    assert skipped and skipped[-1].endswith(f"({len(FOLDER_BAD_TRAIN)} so far)")


@pytest.mark.parametrize("batch_size, process_count", [(5, 1), (4, 3)])
def test_eval_of_a_folder_scores_every_readable_image_once(image_folder, batch_size, process_count, caplog):
    info = _info(image_folder)
    labels, skipped, batches_per_process = [], 0, []
    with caplog.at_level(logging.WARNING):
        for process_index in range(process_count):
            count = 0
            for batch in pipeline.eval_batches(info, "val", local_batch_size=batch_size,
                                               preprocess=pp.build("resize_center_crop", CONTEXT), cache=False,
                                               process_index=process_index, process_count=process_count)():
                labels.append(batch["label"][batch["mask"]])
                skipped += int(batch["skipped"].sum())
                assert not (batch["mask"] & batch["skipped"]).any()
                count += 1
            batches_per_process.append(count)
    assert len(set(batches_per_process)) == 1
    assert skipped == len(FOLDER_BAD_VAL)
    expected = np.full(4, FOLDER_VAL_PER_CLASS)
    expected[FOLDER_CLASSES.index("rocket")] -= 1
    np.testing.assert_array_equal(np.bincount(np.concatenate(labels), minlength=4), expected)
    assert any("01_truncated.jpg" in record.getMessage() for record in caplog.records), "the file is named"


def test_folder_stream_with_every_augmentation_resumes_exactly_mid_epoch(image_folder):
    info = _info(image_folder)
    steps_per_epoch = pipeline.steps_per_epoch(info, 8)
    assert steps_per_epoch == 5
    uninterrupted = _stream(info, 0, AUGMENTED)
    batches = [next(uninterrupted) for _ in range(steps_per_epoch + 3)]
    for start in (2, steps_per_epoch + 1):
        resumed = _stream(info, start, AUGMENTED)
        for offset in range(2):
            got = next(resumed)
            for key in ("image", "label", "mask"):
                np.testing.assert_array_equal(got[key], batches[start + offset][key])
    assert not np.array_equal(batches[0]["image"], batches[steps_per_epoch]["image"]), "epochs differ"


def test_two_processes_make_the_one_process_global_batch(image_folder):
    info = _info(image_folder)
    one = next(_stream(info, 3))
    halves = [next(_stream(info, 3, process_index=index, process_count=2)) for index in range(2)]
    assert halves[0]["image"].shape == (4, 32, 32, 3), "each process makes its half of the global batch"
    for key in ("image", "label", "mask"):
        np.testing.assert_array_equal(np.concatenate([half[key] for half in halves]), one[key])


UNIFORM_CLASSES, UNIFORM_PER_CLASS = 40, 25


@pytest.fixture(scope="module")
def many_class_folder(tmp_path_factory) -> str:
    """40 classes x 25 tiny PNGs: sorted by class on disk, as ImageNet's folders are."""
    from PIL import Image

    root = tmp_path_factory.mktemp("forty_classes")
    for index in range(UNIFORM_CLASSES):
        directory = root / "train" / f"class_{index:02d}"
        directory.mkdir(parents=True)
        for k in range(UNIFORM_PER_CLASS):
            Image.fromarray(np.full((4, 4, 3), (index * 6, k * 10, 0), np.uint8)).save(directory / f"{k:02d}.png")
    return str(root)


def test_first_batches_of_a_40_class_folder_have_uniform_labels(many_class_folder):
    from scipy.stats import chisquare

    info = _info(many_class_folder)
    assert info.num_classes == UNIFORM_CLASSES
    stream = pipeline.train_batches(info, global_batch_size=16, seed=0, start_step=0,
                                    preprocess=pp.build("flip_lr", pp.PreprocessContext(4, 1.0, 3)), cache=False)
    labels = np.concatenate([next(stream)["label"] for _ in range(25)])  # 400 of the 1,000 images
    counts = np.bincount(labels, minlength=UNIFORM_CLASSES)
    # Reading the sorted files through a small shuffle buffer gives ~20 classes here (p ~ 1e-100).
    assert chisquare(counts).pvalue > 0.01, counts


def test_bad_folder_layouts_are_explained(tmp_path):
    from imagenet_jax.errors import DatasetNotPreparedError

    with pytest.raises(DatasetNotPreparedError, match="no image folders found"):
        folders.load_folder(f"folder:{tmp_path}")
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "val" / "b").mkdir(parents=True)
    info = folders.load_folder(f"folder:{tmp_path}")
    with pytest.raises(DatasetNotPreparedError, match="not a class of the training split"):
        info.num_examples("val")


def test_prepare_lists_the_unreadable_files_of_a_folder(image_folder, capsys):
    from imagenet_jax import prepare

    assert prepare.main(["--dataset", f"folder:{image_folder}"]) == 0
    captured = capsys.readouterr()
    listed = sorted(line.split(image_folder + "/")[1] for line in captured.err.splitlines()
                    if line.startswith("unreadable: "))
    assert listed == sorted(FOLDER_BAD_TRAIN + FOLDER_BAD_VAL)
    assert f"train {TRAIN_SIZE}" in captured.out


def test_a_chain_that_fails_on_every_image_is_a_config_error_not_skipped_data(image_folder):
    import tensorflow as tf

    from imagenet_jax.data.ops import OPS
    from imagenet_jax.errors import ConfigError

    def overpad(image, seed, context):  # negative padding: passes the parse-time checks, fails on every image
        return tf.pad(pp.decode(image, context.channels), [[-50, -50], [-50, -50], [0, 0]])

    OPS.register("test_overpad", overpad)
    try:
        with pytest.raises(ConfigError, match="fails on a valid 8x8 JPEG"):
            _stream(_info(image_folder), 0, chain="test_overpad")
    finally:
        OPS.unregister("test_overpad")
