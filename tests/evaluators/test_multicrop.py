"""multicrop: ten-crop boxes equal torchvision's TenCrop, and the crop-averaged softmax."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.multicrop import MultiCrop, averaged_probabilities, crop_boxes, crops


def test_ten_crop_boxes_are_torchvisions_definition_by_hand():
    # torchvision five_crop: tl, tr, bl, br, center (round((h - s) / 2)); ten_crop: those, then of the flipped image.
    boxes = crop_boxes(10, 13, 6, "ten_crop")
    five = [(0, 0), (0, 7), (4, 0), (4, 7), (2, 4)]  # center: round(4/2)=2, round(7/2)=round(3.5)=4
    assert boxes == [(t, left, False) for t, left in five] + [(t, left, True) for t, left in five]
    assert crop_boxes(10, 13, 6, "center") == [(2, 4, False)]


def test_ten_crops_equal_torchvision_ten_crop():
    torch = pytest.importorskip("torch")
    transforms = pytest.importorskip("torchvision.transforms")
    image = np.random.default_rng(0).integers(0, 255, (11, 14, 3)).astype(np.uint8)
    expected = transforms.TenCrop(6)(torch.from_numpy(image).permute(2, 0, 1))
    ours = crops(jnp.asarray(image[None]), 6, "ten_crop")
    assert len(ours) == len(expected) == 10
    for mine, theirs in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(mine[0]), theirs.permute(1, 2, 0).numpy())


def test_averaged_probabilities_is_the_mean_softmax_over_crops_and_scales():
    image = np.random.default_rng(1).normal(size=(1, 8, 8, 1)).astype(np.float32)

    def logits_of(view):  # two classes: the view's mean and minus it
        mean = jnp.mean(view, axis=(1, 2, 3))
        return jnp.stack([mean, -mean], -1)

    got = np.asarray(averaged_probabilities(logits_of, jnp.asarray(image), 4, "ten_crop", ()))
    views = [np.asarray(view) for view in crops(jnp.asarray(image), 4, "ten_crop")]
    softmax = [np.exp([v.mean(), -v.mean()]) / np.exp([v.mean(), -v.mean()]).sum() for v in views]
    np.testing.assert_allclose(got[0], np.mean(softmax, 0), rtol=1e-5)
    two_scales = averaged_probabilities(logits_of, jnp.asarray(image), 4, "center", (8, 6))
    assert two_scales.shape == (1, 2)


def test_options_are_validated_with_the_key_named():
    with pytest.raises(ConfigError, match=r"config.evals.mc.mode"):
        MultiCrop.validate("mc", {"mode": "twelve"})
    with pytest.raises(ConfigError, match=r"config.evals.mc.scales"):
        MultiCrop.validate("mc", {"scales": 256})


def test_dense_views_are_the_whole_image_and_its_mirror():
    image = jnp.arange(2 * 5 * 7 * 1, dtype=jnp.float32).reshape(2, 5, 7, 1)
    whole, mirrored = crops(image, 3, "dense")
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(image))
    np.testing.assert_array_equal(np.asarray(mirrored), np.asarray(image[:, :, ::-1]))
    assert crop_boxes(5, 7, 3, "dense") == [(0, 0, False), (0, 0, True)]


def test_dense_mode_needs_a_model_whose_classifier_slides():
    from imagenet_jax import models

    assert getattr(models.create("vgg_small"), "supports_dense_eval", False)
    assert not getattr(models.create("resnet_small"), "supports_dense_eval", False)


def test_flip_adds_the_mirror_of_every_view_and_five_crop_with_flip_is_ten_crop():
    assert crop_boxes(10, 13, 6, "center", flip=True) == [(2, 4, False), (2, 4, True)]
    assert crop_boxes(10, 13, 6, "five_crop", flip=True) == crop_boxes(10, 13, 6, "ten_crop")
    assert len(crop_boxes(10, 13, 6, "five_crop")) == 5
    image = jnp.asarray(np.random.default_rng(2).normal(size=(1, 8, 8, 1)).astype(np.float32))

    def logits_of(view):
        return jnp.stack([view[:, 0, 0, 0], view[:, 0, -1, 0]], -1)  # left and right corner: a mirror swaps them

    got = np.asarray(averaged_probabilities(logits_of, image, 8, "center", (), flip=True))[0]
    left, right = float(image[0, 0, 0, 0]), float(image[0, 0, -1, 0])
    plain, mirrored = np.exp([left, right]), np.exp([right, left])
    np.testing.assert_allclose(got, (plain / plain.sum() + mirrored / mirrored.sum()) / 2, rtol=1e-5)


def test_flip_with_a_mode_that_already_mirrors_is_refused():
    with pytest.raises(ConfigError, match=r"config.evals.tta.flip: mode 'ten_crop' already averages"):
        MultiCrop.validate("tta", {"mode": "ten_crop", "flip": True})
    with pytest.raises(ConfigError, match=r"config.evals.tta.flip='yes' must be True or False"):
        MultiCrop.validate("tta", {"mode": "center", "flip": "yes"})
    MultiCrop.validate("tta", {"mode": "five_crop", "flip": True, "scales": (32, 36)})
