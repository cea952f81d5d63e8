"""The low-resolution cache of progressive resizing (config.lowres_cache_max_size): small training phases read
images decoded once at reduced JPEG scale from memory, larger phases read the files, and the stream (examples,
order, skipped unreadable files, resume) is the same as without the cache."""

from __future__ import annotations

import numpy as np

from imagenet_jax.config import get_base_config
from imagenet_jax.data import inputs, pipeline, sources
from tests.data.conftest import FOLDER_BAD_TRAIN, FOLDER_CLASSES, FOLDER_TRAIN_PER_CLASS

SMALL, LARGE, BATCH = 24, 32, 8


def _config(image_folder: str, lowres_cache_max_size: int):
    config = get_base_config()
    config.update(dataset=f"folder:{image_folder}", batch_size=BATCH, image_size_schedule=f"0:{SMALL},1:{LARGE}",
                  lowres_cache_max_size=lowres_cache_max_size)
    return config


def _stream(config, info, start_step: int = 0):
    return inputs.train_stream(config, info, start_step=start_step,
                               steps_per_epoch=pipeline.steps_per_epoch(info, BATCH))


def test_the_cache_holds_jpegs_at_the_smallest_scale_above_the_margin(image_folder):
    config = _config(image_folder, SMALL)
    min_side = inputs.lowres_cache_min_side(config, SMALL)
    assert min_side == round(1.15 * SMALL) == 28 and inputs.lowres_cache_min_side(config, LARGE) == 0
    info = pipeline.load_dataset(config.dataset, "")
    cache = sources.cached(info.source(info.train_split), info.channels, min_side)
    short_sides = np.asarray(cache.shapes)[:, :2].min(axis=1)
    masks = np.asarray(cache.masks)
    assert cache.num_examples == len(FOLDER_CLASSES) * FOLDER_TRAIN_PER_CLASS
    assert int((~masks).sum()) == len(FOLDER_BAD_TRAIN), "unreadable files are cached as masked stand-ins"
    # The folder's photos are 500 px by 333-400 px: JPEGs at 1/8 scale (42-50 px), PNGs (every 4th, from index 1)
    # at full size, since only JPEG decodes at reduced scale.
    pngs = len(FOLDER_CLASSES) * len(range(1, FOLDER_TRAIN_PER_CLASS, 4))
    good = short_sides[masks]
    assert int(((good >= 42) & (good <= 50)).sum()) == int(masks.sum()) - pngs
    assert int((good >= 333).sum()) == pngs


def test_small_phase_reads_the_cache_and_large_phase_the_files_in_the_same_order(image_folder):
    info = pipeline.load_dataset(f"folder:{image_folder}", "")
    steps_per_epoch = pipeline.steps_per_epoch(info, BATCH)
    cached_stream, files_stream = _stream(_config(image_folder, SMALL), info), _stream(_config(image_folder, 0), info)
    cached = [next(cached_stream) for _ in range(steps_per_epoch + 2)]
    files = [next(files_stream) for _ in range(steps_per_epoch + 2)]
    for cached_batch, files_batch in zip(cached, files, strict=True):
        # Same slots masked; a masked slot's stand-in (a copy of a neighbour) may differ between the two.
        np.testing.assert_array_equal(cached_batch["mask"], files_batch["mask"])
        good = files_batch["mask"]
        np.testing.assert_array_equal(cached_batch["label"][good], files_batch["label"][good])
    small = [abs(c["image"].astype(float) - f["image"].astype(float))[f["mask"]].mean()
             for c, f in zip(cached[:steps_per_epoch], files[:steps_per_epoch], strict=True)]
    # The same crops of the same photos, decoded at 1/8 scale first: close, but not the file decode's pixels.
    assert 0.5 < float(np.mean(small)) < 12.0, small
    for cached_batch, files_batch in zip(cached[steps_per_epoch:], files[steps_per_epoch:], strict=True):
        assert cached_batch["image"].shape[1] == LARGE
        np.testing.assert_array_equal(cached_batch["image"], files_batch["image"])  # the files, as without cache


def test_resume_inside_the_cached_phase_is_exact(image_folder):
    config = _config(image_folder, SMALL)
    info = pipeline.load_dataset(config.dataset, "")
    stream = _stream(config, info)
    batches = [next(stream) for _ in range(3)]
    resumed = _stream(config, info, start_step=2)
    np.testing.assert_array_equal(next(resumed)["image"], batches[2]["image"])
