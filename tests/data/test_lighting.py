"""AlexNet's PCA colour augmentation (op pca_lighting): the published formula and eigen-decomposition, one shift per
image, its spread, determinism, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from imagenet_jax.data import lighting
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.errors import ConfigError

# fb.resnet.torch's ImageNet PCA (datasets/imagenet.lua), typed here independently of the module.
PUBLISHED_EIGVAL = [0.2175, 0.0188, 0.0045]
PUBLISHED_EIGVEC = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
CONTEXT = pp.PreprocessContext(image_size=16, crop_pct=1.0, channels=3)


def _reference_shift(alpha: np.ndarray) -> np.ndarray:
    # Krizhevsky et al. 2012, Sec. 4.1: [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, eigenvectors p_i as columns, in 0-255.
    eigvec, eigval = np.array(PUBLISHED_EIGVEC), np.array(PUBLISHED_EIGVAL)
    return sum(eigvec[:, i] * alpha[i] * eigval[i] for i in range(3)) * 255.0


def test_the_eigen_decomposition_is_the_published_one():
    np.testing.assert_array_equal(lighting.EIGVAL, PUBLISHED_EIGVAL)
    np.testing.assert_array_equal(lighting.EIGVEC, PUBLISHED_EIGVEC)
    gram = lighting.EIGVEC.T @ lighting.EIGVEC  # the published eigenvectors are orthonormal to 4 decimals
    np.testing.assert_allclose(gram, np.eye(3), atol=2e-3)


def test_pca_shift_is_the_papers_formula_for_given_coefficients():
    for alpha in (np.array([1.0, 0.0, 0.0]), np.array([0.1, -0.2, 0.3]), np.array([-0.05, 0.12, -0.3])):
        np.testing.assert_allclose(lighting.pca_shift(tf.constant(alpha)).numpy(), _reference_shift(alpha),
                                   rtol=1e-6, atol=1e-5)
    # The first component alone: 0.2175 * 255 = 55.46 along (-0.5675, -0.5808, -0.5836).
    np.testing.assert_allclose(lighting.pca_shift(tf.constant([1.0, 0.0, 0.0])).numpy(),
                               [-31.475, -32.212, -32.367], atol=2e-3)


def test_the_op_adds_one_rounded_shift_to_every_pixel_from_its_seed():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 196, (16, 16, 3)).astype(np.uint8)  # no clipping: the shift is at most ~20
    for seed in ([3, 4], [5, 6], [7, 8]):
        seed = tf.constant(seed, tf.int64)
        out = lighting.pca_lighting(tf.constant(image), seed, CONTEXT, 0.1).numpy()
        alpha = 0.1 * tf.random.stateless_normal((3,), seed=seed).numpy()  # the op's draw, recomputed
        expected = np.clip(np.round(image + _reference_shift(alpha).astype(np.float32)), 0, 255)
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(out, expected)
        shift = out.astype(int) - image
        assert (shift == shift[0, 0]).all(), "one colour shift per image"
        np.testing.assert_array_equal(out, lighting.pca_lighting(tf.constant(image), seed, CONTEXT, 0.1).numpy())


def test_the_shift_over_many_images_has_the_spread_of_the_eigenvalues():
    # Projected on the eigenvectors, the shifts are a_i * l_i * 255 with a_i ~ N(0, alphastd^2): std l_i * 25.5.
    gray = tf.fill((4, 4, 3), tf.constant(128, tf.uint8))
    op = tf.function(lambda seed: lighting.pca_lighting(gray, seed, CONTEXT, 0.1)[0, 0])
    shifts = np.array([op(tf.constant([11, k], tf.int64)).numpy() for k in range(2000)], float) - 128.0
    components = shifts @ np.array(PUBLISHED_EIGVEC)
    expected_std = np.array(PUBLISHED_EIGVAL) * 255 * 0.1  # 5.55, 0.48, 0.11
    assert abs(components[:, 0].std() / expected_std[0] - 1) < 0.06
    assert abs(components.mean(axis=0)[0]) < 0.3
    # The two small components are below the uint8 rounding (0.29 std): bounded by it, not resolved.
    assert (components[:, 1:].std(axis=0) < expected_std[1:] + 0.5).all()
    zero = np.array([tf.function(lambda seed: lighting.pca_lighting(gray, seed, CONTEXT, 0.0))(
        tf.constant([1, k], tf.int64)).numpy() for k in range(3)])
    assert (zero == 128).all(), "alphastd=0 is the identity"


def test_pca_lighting_checks_its_argument_and_needs_rgb():
    assert pp.parse_chain("scale_jitter_crop(256, 512)|flip_lr|pca_lighting(0.1)")[-1] == (
        "pca_lighting", (0.1,), {})
    with pytest.raises(ConfigError, match=r"op 'pca_lighting\(-0.1\)': alphastd=-0.1 must be in \[0, 1\]"):
        pp.parse_chain("pca_lighting(-0.1)", "train_preprocess")
    gray = pp.PreprocessContext(image_size=16, crop_pct=1.0, channels=1)
    with pytest.raises(ConfigError, match="pca_lighting .* needs 3-channel images, not 1"):
        pp.build("pca_lighting", gray)(tf.zeros((16, 16, 1), tf.uint8), tf.constant([1, 2], tf.int64))
