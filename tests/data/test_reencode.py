"""`python -m imagenet_jax.prepare --reencode_to`: a copy of the prepared fake ImageNet with smaller JPEGs that
keeps every example, label and key in order, resizes with a box filter, keeps what would only grow, copies what
cannot be decoded, resumes after an interruption and refuses bad flags by name."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from imagenet_jax import prepare
from imagenet_jax.data import pipeline, reencode, sources
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.data.fake_imagenet import validation_synsets
from tests.conftest import REPO
from tests.data.conftest import FAKE_TRAIN_PER_CLASS, FAKE_VAL_IMAGES

TRAIN = FAKE_TRAIN_PER_CLASS * FAKE_VAL_IMAGES


def _records(data_dir: str, split: str) -> list[dict]:
    info = pipeline.load_dataset("imagenet2012", data_dir)
    return list(sources.examples(info.source(split)).as_numpy_iterator())


def _reencode(data_dir, target, *flags: str) -> int:
    return prepare.main(["--dataset", "imagenet2012", "--data_dir", str(data_dir), "--reencode_to", str(target),
                         *flags])


def _version_dir(data_dir) -> str:
    return os.path.join(str(data_dir), "imagenet2012", "5.1.0")


@pytest.fixture(scope="module")
def reencoded_200(fake_imagenet_data_dir, tmp_path_factory) -> str:
    """The fake ImageNet re-encoded with longer side 200 at quality 85 (train only)."""
    target = str(tmp_path_factory.mktemp("reencoded_200"))
    assert _reencode(fake_imagenet_data_dir, target, "--max_side", "200", "--jpeg_quality", "85") == 0
    return target


def test_copy_keeps_every_example_label_and_key_in_order_with_smaller_jpegs(fake_imagenet_data_dir, reencoded_200):
    original, copy = _records(fake_imagenet_data_dir, "train"), _records(reencoded_200, "train")
    assert len(copy) == TRAIN
    assert [(r["key"], r["label"]) for r in copy] == [(r["key"], r["label"]) for r in original]
    shapes = [tuple(tf.image.extract_jpeg_shape(r["image"]).numpy()[:2]) for r in copy]
    assert all(max(shape) == 200 for shape in shapes)  # the fake photos' longer side is 500
    assert sum(len(r["image"]) for r in copy) < sum(len(r["image"]) for r in original) / 3
    # Validation is not re-encoded by default: accuracy stays measured on the original images.
    assert _records(reencoded_200, "validation") == _records(fake_imagenet_data_dir, "validation")
    with open(os.path.join(_version_dir(reencoded_200), reencode.MARKER)) as stream:
        marker = json.load(stream)
    assert marker["counts"] == {"kept": 0, "reencoded": 0, "resized": TRAIN, "undecodable": 0}
    assert marker["bytes_after"] < marker["bytes_before"] / 3
    assert not os.path.exists(os.path.join(_version_dir(reencoded_200), reencode.PROGRESS))
    assert "longer side <= 200 px, JPEG quality 85" in reencode.describe(_version_dir(reencoded_200))
    assert reencode.describe(_version_dir(fake_imagenet_data_dir)) == ""
    # What a run's log says about the data: the copy names itself, the original says nothing.
    assert "re-encoded copy of" in pipeline.load_dataset("imagenet2012", reencoded_200).note
    assert pipeline.load_dataset("imagenet2012", fake_imagenet_data_dir).note == ""


@pytest.mark.slow
def test_every_run_on_a_copy_logs_once_that_its_jpegs_are_not_the_originals(reencoded_200, tmp_path, caplog):
    import imagenet_jax

    overrides = {"data_dir": reencoded_200, "image_size": 32, "batch_size": 16, "eval_batch_size": 8,
                 "num_train_steps": 1, "eval_split": "validation[:8]", "schedule.warmup_epochs": 0,
                 "write_report": False}
    for workdir in ("first", "second"):  # two runs in one process (a notebook): each says it, once
        caplog.clear()
        with caplog.at_level(logging.INFO):
            imagenet_jax.train(os.path.join(REPO, "configs", "resnet18.py"), tmp_path / workdir, overrides)
        assert caplog.text.count("re-encoded copy of") == 1  # loaded twice per run (training, evaluators)


def test_resized_pixels_are_a_box_filter_resize_of_the_original(fake_imagenet_data_dir, reencoded_200):
    original, copy = _records(fake_imagenet_data_dir, "train")[:12], _records(reencoded_200, "train")[:12]
    errors = []
    for before, after in zip(original, copy):
        small = tf.io.decode_jpeg(after["image"]).numpy().astype(np.float32)
        reference = tf.image.resize(tf.io.decode_jpeg(before["image"]), small.shape[:2], method="area").numpy()
        errors.append(np.abs(small - reference).mean())
        other_photo = np.abs(small - reference[::-1]).mean()  # how far apart unrelated pixels are, for scale
        assert errors[-1] < other_photo / 4
    print("mean absolute error per image:", np.round(errors, 2))
    assert max(errors) < 6 and np.mean(errors) < 4  # JPEG quality 85 on these photos, in 0..255


def test_images_that_would_only_grow_keep_their_bytes(fake_imagenet_data_dir, tmp_path):
    # The fake photos are JPEG quality 75-95: at quality 100 and no resizing every re-encoding is larger.
    assert _reencode(fake_imagenet_data_dir, tmp_path, "--max_side", "0", "--jpeg_quality", "100") == 0
    assert [r["image"] for r in _records(tmp_path, "train")] == [
        r["image"] for r in _records(fake_imagenet_data_dir, "train")]
    with open(os.path.join(_version_dir(tmp_path), reencode.MARKER)) as stream:
        assert json.load(stream)["counts"]["kept"] == TRAIN


def test_an_interrupted_copy_resumes_without_redoing_finished_files(fake_imagenet_data_dir, tmp_path, monkeypatch):
    copy_file = reencode._copy_atomically

    def crash_on_validation(source, target):
        if "validation" in os.path.basename(target):
            raise KeyboardInterrupt  # stopped by the user, say, after train was written
        copy_file(source, target)

    monkeypatch.setattr(reencode, "_copy_atomically", crash_on_validation)
    # Ctrl-C: the front door prints "interrupted" and exits 130 (imagenet_jax/cli/dispatch.py).
    assert _reencode(fake_imagenet_data_dir, tmp_path, "--max_side", "200", "--jpeg_quality", "85") == 130
    version_dir = _version_dir(tmp_path)
    assert not os.path.exists(os.path.join(version_dir, "dataset_info.json"))  # TFDS does not see a dataset yet
    with open(os.path.join(version_dir, reencode.PROGRESS)) as stream:
        assert "train" in " ".join(json.load(stream)["files"])

    # Another run with other settings would mix two kinds of images: refused.
    monkeypatch.setattr(reencode, "_copy_atomically", copy_file)
    assert _reencode(fake_imagenet_data_dir, tmp_path, "--max_side", "300") == 2

    calls = []
    reencode_file = reencode._reencode_file
    monkeypatch.setattr(reencode, "_reencode_file", lambda *args: calls.append(args) or reencode_file(*args))
    assert _reencode(fake_imagenet_data_dir, tmp_path, "--max_side", "200", "--jpeg_quality", "85") == 0
    assert calls == []  # train was complete: not re-encoded again
    with open(os.path.join(version_dir, reencode.MARKER)) as stream:
        assert json.load(stream)["counts"]["resized"] == TRAIN  # counts of the first run's file kept
    assert len(_records(tmp_path, "validation")) == FAKE_VAL_IMAGES


def test_a_finished_copy_is_reused_and_other_settings_are_refused(fake_imagenet_data_dir, reencoded_200, capsys):
    assert _reencode(fake_imagenet_data_dir, reencoded_200, "--max_side", "200", "--jpeg_quality", "85") == 0
    assert "complete already" in capsys.readouterr().err
    assert _reencode(fake_imagenet_data_dir, reencoded_200, "--max_side", "200", "--jpeg_quality", "80") == 2
    assert "other settings" in capsys.readouterr().err


def test_an_undecodable_image_is_copied_and_training_still_skips_it(tmp_path):
    from imagenet_jax.data.fake_imagenet import make_fake_imagenet

    manual = str(tmp_path / "manual")
    make_fake_imagenet(manual, train_per_class=2, val_images=4, truncated=(f"{validation_synsets(1)[0]}_2.JPEG",))
    assert prepare.main(["--manual_dir", manual, "--data_dir", str(tmp_path / "data")]) == 0
    assert _reencode(tmp_path / "data", tmp_path / "copy", "--max_side", "128") == 0
    with open(os.path.join(_version_dir(tmp_path / "copy"), reencode.MARKER)) as stream:
        assert json.load(stream)["counts"] == {"kept": 0, "reencoded": 0, "resized": 7, "undecodable": 1}
    name = f"{validation_synsets(1)[0]}_2.JPEG".encode()
    before = {r["key"]: r["image"] for r in _records(tmp_path / "data", "train")}
    after = {r["key"]: r["image"] for r in _records(tmp_path / "copy", "train")}
    assert after[name] == before[name]  # the truncated file, byte for byte
    info = pipeline.load_dataset("imagenet2012", str(tmp_path / "copy"))
    context = pp.PreprocessContext(image_size=24, crop_pct=0.875, channels=3)
    train = pipeline.train_batches(info, global_batch_size=4, seed=0, start_step=0,
                                   preprocess=pp.build("random_resized_crop|flip_lr", context), cache=False)
    masks = np.concatenate([next(train)["mask"] for _ in range(2)])  # one epoch of 8
    assert int((~masks).sum()) == 1


@pytest.mark.parametrize(("flags", "message"), [
    (["--jpeg_quality", "0"], "--jpeg_quality 0"),
    (["--max_side", "10"], "--max_side 10"),
    (["--reencode_splits", "train,test"], "--reencode_splits train,test"),
])
def test_bad_flags_are_refused_by_name(fake_imagenet_data_dir, tmp_path, capsys, flags, message):
    assert _reencode(fake_imagenet_data_dir, tmp_path, *flags) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(os.path.join(_version_dir(tmp_path), "dataset_info.json"))


def test_the_source_itself_and_an_unprepared_dataset_are_refused(fake_imagenet_data_dir, tmp_path, capsys):
    assert _reencode(fake_imagenet_data_dir, fake_imagenet_data_dir) == 2
    assert "the dataset's own data dir" in capsys.readouterr().err
    assert _reencode(tmp_path / "empty", tmp_path / "copy") == 2
    assert "not prepared" in capsys.readouterr().err
