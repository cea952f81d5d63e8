"""ImageNet-C's digital corruptions on float NHWC images in [0, 1], with ImageNet-C's parameters.

Contrast, elastic transform and pixelate run on device; JPEG runs on the host (PIL) through jax.pure_callback.
Elastic transform is imagecorruptions' version (a smooth random displacement field whose size scales with the
image; ImageNet-C's original release also applied a random affine warp first, with other parameters).
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.robustness.corruptions import filters

CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)  # what remains of each channel's deviation from its mean
ELASTIC = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)  # gain of the smoothed displacement
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)  # side of the box-downsampled image, as a fraction
JPEG_QUALITY = (25, 18, 15, 10, 7)


def contrast(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """(x - mean) * c + mean, the mean taken per image and channel."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    return (x - mean) * CONTRAST[severity - 1] + mean


def elastic_transform_with(x: jax.Array, severity: int, uniform: jax.Array) -> jax.Array:
    """Bilinear resampling (mirrored borders) at pixel + alpha * Gaussian-smoothed U(-r, r) displacements,
    r = 0.005 * height, the smoothing sigma 0.01 * the side (truncated at 3 sigma); `uniform` (N, H, W, 2) holds
    the U[0, 1) numbers of the column and the row displacements."""
    _, height, width, _ = x.shape
    reach = 0.005 * height
    noise = (2.0 * uniform - 1.0) * reach
    shift = filters.gaussian_filter(noise, (0.01 * height, 0.01 * width), truncate=3.0, pad_mode="symmetric")
    shift = shift * ELASTIC[severity - 1]
    rows = jnp.arange(height, dtype=jnp.float32)[:, None] + shift[..., 1]
    cols = jnp.arange(width, dtype=jnp.float32)[None, :] + shift[..., 0]

    def warp(image, image_rows, image_cols):
        return jnp.stack([jax.scipy.ndimage.map_coordinates(image[..., c], [image_rows, image_cols], order=1,
                                                            mode="reflect") for c in range(image.shape[-1])], -1)

    return jax.vmap(warp)(x, rows, cols)


def elastic_transform(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """A smooth random displacement of every pixel, bilinearly resampled."""
    return elastic_transform_with(x, severity, jax.random.uniform(key, (*x.shape[:3], 2)))


def pixelate(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """PIL's BOX downsample to int(c * side) (width pass, then height, each rounded to 8 bits as PIL does),
    then PIL's NEAREST upsample."""
    _, height, width, _ = x.shape
    small_h, small_w = int(height * PIXELATE[severity - 1]), int(width * PIXELATE[severity - 1])
    values = x * 255.0
    values = jnp.floor(jnp.einsum("nhwc,pw->nhpc", values, jnp.asarray(filters.pil_box_matrix(width, small_w),
                                                                       jnp.float32), precision=filters.HIGHEST) + 0.5)
    values = jnp.floor(jnp.einsum("oh,nhwc->nowc", jnp.asarray(filters.pil_box_matrix(height, small_h), jnp.float32),
                                  values, precision=filters.HIGHEST) + 0.5)
    upsampled = filters.resample(values, filters.nearest_matrix(small_h, height),
                                 filters.nearest_matrix(small_w, width))
    return upsampled / 255.0


def _jpeg_host(images: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty(images.shape, np.float32)
    for index, image in enumerate(np.clip(np.floor(images * 255.0 + 0.5), 0, 255).astype(np.uint8)):
        gray = image.shape[-1] == 1
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if gray else image).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), np.float32)
        out[index] = decoded[..., None] if gray else decoded
    return out / 255.0


def jpeg_compression(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """PIL JPEG encode and decode at quality 25 ... 7, on the host."""
    quality = JPEG_QUALITY[severity - 1]
    spec = jax.ShapeDtypeStruct(x.shape, jnp.float32)
    return jax.pure_callback(lambda images: _jpeg_host(np.asarray(images), quality), spec, x.astype(jnp.float32))
