"""ImageNet-C-style corruptions (Hendrycks & Dietterich 2019) of float NHWC images in [0, 255], on device.

Severities 1-5 use ImageNet-C's parameters; blur sigmas are given for 224-pixel images and scaled with the
image side, so a 28-pixel image gets the same relative blur. Approximations, said where they are: "fog" is a
multi-octave smooth random field (ImageNet-C uses a diamond-square plasma fractal); "gaussian_blur" stands in
for the defocus (disk) blur; "brightness" adds to HSV value with hue and saturation kept, computed in RGB;
"jpeg_compression" runs on the host (PIL) through jax.pure_callback.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)


def gaussian_noise(images, severity, key):
    """Additive N(0, c) noise on [0, 1] images, c = .08 ... .38."""
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    return images / 255.0 + c * jax.random.normal(key, images.shape)


def shot_noise(images, severity, key):
    """Poisson noise: Poisson(x * c) / c, c = 60 ... 3 (fewer photons is noisier)."""
    c = (60.0, 25.0, 12.0, 5.0, 3.0)[severity - 1]
    return jax.random.poisson(key, images / 255.0 * c, images.shape).astype(jnp.float32) / c


def impulse_noise(images, severity, key):
    """Salt-and-pepper: a fraction c = .03 ... .27 of values set to 0 or 1."""
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    hit_key, salt_key = jax.random.split(key)
    hit = jax.random.uniform(hit_key, images.shape) < c
    salt = jax.random.bernoulli(salt_key, 0.5, images.shape).astype(jnp.float32)
    return jnp.where(hit, salt, images / 255.0)


def gaussian_blur(images, severity, key):
    """Separable Gaussian blur with sigma 1 ... 6 pixels at 224 px, scaled with the image side."""
    sigma = (1.0, 2.0, 3.0, 4.0, 6.0)[severity - 1] * images.shape[1] / 224.0
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma, 1e-6)) ** 2)
    taps = jnp.asarray(taps / taps.sum(), jnp.float32)
    x = images / 255.0
    padded = jnp.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
    size_h, size_w = x.shape[1], x.shape[2]
    rows = sum(taps[i] * padded[:, i:i + size_h, :, :] for i in range(2 * radius + 1))
    return sum(taps[i] * rows[:, :, i:i + size_w, :] for i in range(2 * radius + 1))


def contrast(images, severity, key):
    """Pulls each image toward its mean: (x - mean) * c + mean, c = .4 ... .05."""
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    x = images / 255.0
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * c + mean


def brightness(images, severity, key):
    """HSV value + c (c = .1 ... .5), clipped to 1, hue and saturation kept."""
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    x = images / 255.0
    value = jnp.max(x, axis=-1, keepdims=True)
    scale = jnp.minimum(value + c, 1.0) / jnp.maximum(value, 1e-6)
    return jnp.where(value > 0, x * scale, c)


def fog(images, severity, key):
    """x + c0 * smooth random field (octave amplitudes decaying by c1), rescaled by max / (max + c0).

    ImageNet-C's decays c1; c0 rises by 0.5 per severity (ImageNet-C: 1.5, 2, 2.5, 2.5, 3), so that every
    severity distorts more than the one below with this field.
    """
    c0, decay = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (3.0, 1.5), (3.5, 1.4))[severity - 1]
    n, height, width, _ = images.shape
    field = jnp.zeros((n, height, width, 1))
    amplitude, cells = 1.0, 2
    for octave_key in jax.random.split(key, 6):
        coarse = jax.random.uniform(octave_key, (n, cells, cells, 1))
        field = field + amplitude * jax.image.resize(coarse, (n, height, width, 1), "bilinear")
        amplitude, cells = amplitude / decay, cells * 2
    low, high = jnp.min(field, axis=(1, 2, 3), keepdims=True), jnp.max(field, axis=(1, 2, 3), keepdims=True)
    field = (field - low) / jnp.maximum(high - low, 1e-6)
    x = images / 255.0
    top = jnp.max(x, axis=(1, 2, 3), keepdims=True)
    return (x + c0 * field) * top / (top + c0)


def pixelate(images, severity, key):
    """Box-downsample to c = .6 ... .25 of the side, then nearest-neighbour upsample."""
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    n, height, width, channels = images.shape
    small = (n, max(1, int(height * c)), max(1, int(width * c)), channels)
    return jax.image.resize(jax.image.resize(images / 255.0, small, "linear", antialias=True),
                            images.shape, "nearest")


def _jpeg_host(images: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(images)
    for index, image in enumerate(np.clip(np.round(images), 0, 255).astype(np.uint8)):
        squeeze = image.shape[-1] == 1
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if squeeze else image).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), np.float32)
        out[index] = decoded[..., None] if squeeze else decoded
    return out


def jpeg_compression(images, severity, key):
    """JPEG encode/decode at quality 25 ... 7 (host-side, PIL)."""
    quality = (25, 18, 15, 10, 7)[severity - 1]
    spec = jax.ShapeDtypeStruct(images.shape, jnp.float32)
    decoded = jax.pure_callback(lambda x: _jpeg_host(np.asarray(x), quality), spec, images.astype(jnp.float32))
    return decoded / 255.0


CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur, "contrast": contrast, "brightness": brightness, "fog": fog,
    "jpeg_compression": jpeg_compression, "pixelate": pixelate,
}


def corrupt(images: jax.Array, name: str, severity: int, key: jax.Array) -> jax.Array:
    """`images` (0-255 values, any dtype) with corruption `name` at `severity`, float32 integers in [0, 255]."""
    corrupted = CORRUPTIONS[name](images.astype(jnp.float32), severity, key)
    return jnp.round(jnp.clip(corrupted, 0.0, 1.0) * 255.0)  # ImageNet-C saves uint8 images
