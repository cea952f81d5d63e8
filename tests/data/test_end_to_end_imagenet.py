"""configs/resnet18.py at tiny scale on the fake ImageNet prepared by imagenet_jax.prepare: it trains, scores
every image of every eval set exactly once, and a run resumed mid-epoch is exactly the uninterrupted one."""

from __future__ import annotations

import os

import numpy as np
import pytest

from imagenet_jax.data.fake_imagenet import _PHOTOS, _photo, _sample, encode, validation_synsets
from tests.conftest import read_metrics, run_main
from tests.data.conftest import FAKE_TRAIN_PER_CLASS, FAKE_VAL_IMAGES
from tests.training.test_training import _trajectory

pytestmark = pytest.mark.slow

MINIVAL = 8
STEPS_PER_EPOCH = (FAKE_VAL_IMAGES * FAKE_TRAIN_PER_CLASS - MINIVAL) // 16


def _tiny(data_dir: str, steps: int) -> list[str]:
    return [f"--config.data_dir={data_dir}", "--config.image_size=32", "--config.batch_size=16",
            "--config.eval_batch_size=6", f"--config.num_train_steps={steps}", "--config.log_every_steps=1",
            "--config.eval_every_steps=3", "--config.schedule.warmup_epochs=0",
            f"--eval=minival=classification,holdout={MINIVAL}"]


def test_resnet18_trains_and_scores_every_image_of_every_eval_set_once(tmp_path, fake_imagenet_data_dir):
    # An ImageNet-R-like folder: a few of the 1000 classes, by WordNet id; scored among those classes only.
    folder = tmp_path / "renditions"
    synsets = validation_synsets(FAKE_VAL_IMAGES)[:3]
    for index, synset in enumerate(synsets):
        os.makedirs(folder / "val" / synset)
        for k in range(2):
            pixels = _sample(_photo(_PHOTOS[index]), np.random.default_rng(k), portrait=False)
            (folder / "val" / synset / f"{k}.jpg").write_bytes(encode(pixels))
    workdir = str(tmp_path / "run")
    extra = ["--eval=first7=classification,dataset=imagenet2012,split=validation[:7]",
             f"--eval=renditions=classification,dataset=folder:{folder},split=val"]
    result = run_main(workdir, *_tiny(fake_imagenet_data_dir, 6), *extra, config="configs/resnet18.py",
                      env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 local / 2 global devices" not in result.stderr and "2 local / 2 global devices" in result.stderr
    lines = read_metrics(workdir)
    expected = {"validation": FAKE_VAL_IMAGES, "minival": MINIVAL, "first7": 7, "renditions": 6}
    for step in (3, 6):
        scored = {line["split"]: line["num_examples"] for line in lines
                  if line["step"] == step and "num_examples" in line}
        assert scored == expected, step
    train = [line for line in lines if line["split"] == "train"]
    assert [line["step"] for line in train] == list(range(1, 7))
    assert all(line["loss"] > 0 and line["skipped_steps"] == 0 for line in train)


def test_resume_mid_epoch_with_every_augmentation_is_exact(tmp_path, fake_imagenet_data_dir):
    augmentations = ["--config.schedule.name=constant",
                     "--config.train_preprocess=random_resized_crop|flip_lr|random_affine(10.0, 0.0, 0.0, 0.1, 0.0, "
                     "'nearest')|randaugment(2, 9.0)|color_jitter(0.4)|random_erasing(0.25)",
                     "--config.mixup_alpha=0.2", "--config.cutmix_alpha=1.0"]
    total, stop = 6, 3
    assert 0 < stop % STEPS_PER_EPOCH, "stops mid-epoch"
    reference = str(tmp_path / "uninterrupted")
    result = run_main(reference, *_tiny(fake_imagenet_data_dir, total), *augmentations, config="configs/resnet18.py")
    assert result.returncode == 0, result.stderr[-3000:]

    resumed = str(tmp_path / "resumed")
    first = run_main(resumed, *_tiny(fake_imagenet_data_dir, stop), *augmentations, config="configs/resnet18.py")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_main(resumed, *_tiny(fake_imagenet_data_dir, total), *augmentations,
                      "--config.allow_config_change=True", config="configs/resnet18.py")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from step {stop}" in second.stderr
    assert _trajectory(resumed) == _trajectory(reference)


def test_a_folder_dataset_with_unreadable_images_trains_and_counts_them(tmp_path, image_folder):
    from tests.data.conftest import FOLDER_BAD_VAL, FOLDER_CLASSES, FOLDER_VAL_PER_CLASS

    workdir = str(tmp_path / "run")
    result = run_main(workdir, f"--config.dataset=folder:{image_folder}", "--config.image_size=32",
                      "--config.crop_pct=0.875", "--config.train_preprocess=random_resized_crop|flip_lr",
                      "--config.eval_preprocess=resize_center_crop", "--config.normalize_mean=(127.0,)",
                      "--config.normalize_std=(64.0,)", "--config.batch_size=8", "--config.num_train_steps=6",
                      "--config.log_every_steps=3",
                      "--config.schedule.warmup_epochs=0", "--config.cache_dataset=False")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unreadable image" in result.stderr
    evals = [line for line in read_metrics(workdir) if line["split"] == "val"]
    total = len(FOLDER_CLASSES) * FOLDER_VAL_PER_CLASS
    assert evals and all(line["num_examples"] == total - len(FOLDER_BAD_VAL) for line in evals)
    assert all(line["num_skipped"] == len(FOLDER_BAD_VAL) for line in evals)
