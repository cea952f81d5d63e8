"""ImageNet-C's 15 corruptions (Hendrycks & Dietterich 2019) of NHWC images with 0-255 values, at severities 1-5.

`corrupt(images, name, severity, key)` applies one. Parameters per severity are ImageNet-C's as published in its
`imagecorruptions` package (1.1.2), which the tests (tests/robustness/test_imagenet_c_reference.py) use as the
oracle on real photographs: deterministic corruptions agree pixel for pixel within a gray level or two, random
ones in the mean and spread of the change they make. The implementation is our own:

- on device: gaussian_noise, shot_noise, impulse_noise (noise.py); defocus_blur, glass_blur (its sequential
  pixel loop regrouped into waves of disjoint steps, same result), motion_blur, zoom_blur (blur.py); snow,
  fog (our diamond-square plasma fractal, ImageNet-C's algorithm and parameters), brightness (weather.py);
  contrast, elastic_transform, pixelate (digital.py);
- on the host through jax.pure_callback: jpeg_compression (PIL) and the crop of frost's photograph (weather.py:
  the photographs are read from an installed imagecorruptions package, with an instruction when absent).

Where the result differs from ImageNet-C by design: pixel-sized parameters (blur radii and sigmas, glass blur's
shuffle distance, motion-blur lengths, the frost photograph's scale) are ImageNet-C's for 224-pixel images and
are scaled by (shorter side / 224) for other sizes, so a 32-pixel image is blurred as much relative to its size
(imagecorruptions applies the 224-px values at any size); motion blur and snow follow imagecorruptions' numpy
motion blur, not the ImageMagick one ImageNet-C's released files were made with; elastic_transform is
imagecorruptions' version (no random affine warp). Results are truncated to integers, as ImageNet-C's np.uint8.
"gaussian_blur" is ImageNet-C's held-out validation blur, kept as an extra: it is not one of the 15 and is not
in an mCE.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from imagenet_jax.robustness.corruptions import blur, digital, noise, weather

SEVERITIES = (1, 2, 3, 4, 5)

IMAGENET_C: dict[str, Callable] = {  # ImageNet-C's 15, in its order: noise, blur, weather, digital
    "gaussian_noise": noise.gaussian_noise, "shot_noise": noise.shot_noise, "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur, "glass_blur": blur.glass_blur, "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow, "frost": weather.frost, "fog": weather.fog, "brightness": weather.brightness,
    "contrast": digital.contrast, "elastic_transform": digital.elastic_transform, "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}
EXTRA: dict[str, Callable] = {"gaussian_blur": blur.gaussian_blur}
CORRUPTIONS: dict[str, Callable] = {**IMAGENET_C, **EXTRA}


def corrupt(images: jax.Array, name: str, severity: int, key: jax.Array) -> jax.Array:
    """`images` (0-255 values, any dtype) with corruption `name` at `severity`, float32 integers in [0, 255]."""
    corrupted = CORRUPTIONS[name](images.astype(jnp.float32) / 255.0, severity, key)
    # ImageNet-C stores np.uint8(clip(x) * 255): truncation; 1e-3 keeps exact integers computed in float32 exact
    return jnp.floor(jnp.clip(corrupted, 0.0, 1.0) * 255.0 + 1e-3)
