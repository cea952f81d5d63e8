"""AlexNet's PCA colour augmentation ("fancy PCA", Krizhevsky et al. 2012, Sec. 4.1) as the op `pca_lighting`.

To every pixel of an RGB image it adds [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T: p_i and l_i are the eigenvectors and
eigenvalues of the 3x3 covariance of ImageNet's RGB pixel values, a_i ~ N(0, alphastd^2) drawn once per image
(so the shift is one colour per image). AlexNet publishes no values; these are the ones every reimplementation
uses, from fb.resnet.torch (datasets/imagenet.lua, `pca`; computed on [0, 1] pixels), scaled here by 255 to our
0-255 pixels. The shifted image is rounded and clipped back to uint8 like every op of the chain.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from imagenet_jax.data.ops import PreprocessContext, check_number, decode, register_op
from imagenet_jax.errors import ConfigError

# fb.resnet.torch's ImageNet PCA of RGB in [0, 1]: eigenvalues, and the eigenvectors as the columns of EIGVEC.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]])
PIXEL_SCALE = 255.0  # our pipeline's pixels are 0-255


def pca_shift(alpha: tf.Tensor) -> tf.Tensor:
    """The RGB shift (0-255 units) of coefficients alpha[3]: EIGVEC @ (alpha * EIGVAL) * 255."""
    eigval = tf.constant(EIGVAL * PIXEL_SCALE, tf.float32)
    return tf.linalg.matvec(tf.constant(EIGVEC, tf.float32), tf.cast(alpha, tf.float32) * eigval)


def pca_alpha(seed: tf.Tensor, alphastd: float) -> tf.Tensor:
    """The op's coefficients for `seed`: three draws of N(0, alphastd^2)."""
    return alphastd * tf.random.stateless_normal((3,), seed=seed)


def _check_pca_lighting(options: dict, where: str = "") -> None:
    check_number(options, where, "alphastd", 0, 1)


@register_op("pca_lighting", check=_check_pca_lighting)
def pca_lighting(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, alphastd: float = 0.1) -> tf.Tensor:
    """AlexNet's RGB colour shift along ImageNet's principal components, alpha ~ N(0, alphastd^2) per image."""
    if context.channels != 3:
        raise ConfigError(f"op pca_lighting shifts RGB colours along ImageNet's principal components: it needs "
                          f"3-channel images, not {context.channels}.")
    image = decode(image, context.channels)
    shifted = tf.cast(image, tf.float32) + pca_shift(pca_alpha(seed, alphastd))
    return tf.cast(tf.clip_by_value(tf.round(shifted), 0.0, 255.0), tf.uint8)
