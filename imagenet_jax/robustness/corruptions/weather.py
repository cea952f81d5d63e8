"""ImageNet-C's weather corruptions on float NHWC images in [0, 1], with ImageNet-C's parameters.

Snow, fog and brightness run on device. Frost blends a crop of one of ImageNet-C's frost photographs, which are
data, not code: they are read at run time from an installed `imagecorruptions` package (`pip install -e
'.[imagenet_c]'`), and frost stops with that instruction when they are absent. The crop is cut on the host
(jax.pure_callback). For images other than 224 px the frost photograph is first resized by (side / 224), so the
frost texture covers the same fraction of the image (imagecorruptions crops the full-size photograph instead).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import UserFacingError
from imagenet_jax.robustness.corruptions import filters

# snow: noise mean, noise std, zoom, threshold, motion-blur radius, motion-blur sigma, weight of the image
SNOW = ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # weight of the image, weight of the frost
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # ImageNet-C draws 1 of 5
FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # fog strength, plasma roughness decay
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value
GRAY = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY


class FrostImagesMissing(UserFacingError):
    """ImageNet-C's frost photographs are not installed."""


def frost_directory() -> str:
    """The folder of ImageNet-C's frost photographs inside the installed imagecorruptions package."""
    spec = importlib.util.find_spec("imagecorruptions")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "frost") if spec else ""
    if not all(os.path.exists(os.path.join(folder, name)) for name in FROST_FILES):
        raise FrostImagesMissing("the frost corruption blends ImageNet-C's frost photographs, which ship with the "
                                 "imagecorruptions package: pip install -e '.[imagenet_c]' (or pip install "
                                 "imagecorruptions==1.1.2; only its image files are read), or leave frost out of "
                                 "config.evals.<set>.corruptions.")
    return folder


@functools.lru_cache(maxsize=8)
def frost_layers(height: int, width: int) -> tuple[np.ndarray, ...]:
    """The five frost photographs (uint8 RGB) resized as imagecorruptions does for an image of this size: enlarged
    to cover it if smaller, then by 1.1 (bicubic), all after scaling by side / 224."""
    from PIL import Image

    scale = min(height, width) / filters.REFERENCE_SIDE
    layers = []
    for name in FROST_FILES:
        with Image.open(os.path.join(frost_directory(), name)) as opened:
            photo = np.asarray(opened.convert("RGB"), np.float64)
        rows, cols = photo.shape[:2]
        factor = max(1.0, height / (rows * scale), width / (cols * scale)) * scale * 1.1
        out_rows, out_cols = int(np.ceil(rows * factor)), int(np.ceil(cols * factor))
        resized = np.tensordot(filters.cubic_matrix(rows, out_rows), photo, axes=(1, 0))
        resized = np.tensordot(resized, filters.cubic_matrix(cols, out_cols), axes=(1, 1)).transpose(0, 2, 1)
        layers.append(np.clip(np.round(resized), 0, 255).astype(np.uint8))
    return tuple(layers)


def _frost_crops(height: int, width: int, which: np.ndarray, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
    layers = frost_layers(height, width)
    return np.stack([layers[i][t:t + height, left:left + width] for i, t, left in zip(which, tops, lefts)]
                    ).astype(np.float32)


def frost_at(x: jax.Array, severity: int, which: jax.Array, tops: jax.Array, lefts: jax.Array) -> jax.Array:
    """c0 * x + c1 * the crop of frost photograph `which` at (`tops`, `lefts`), one per image."""
    n, height, width, channels = x.shape
    spec = jax.ShapeDtypeStruct((n, height, width, 3), jnp.float32)
    crops = jax.pure_callback(lambda *a: _frost_crops(height, width, *(np.asarray(v) for v in a)), spec,
                              which, tops, lefts) / 255.0
    if channels == 1:
        crops = jnp.tensordot(crops, jnp.asarray((0.2989, 0.5870, 0.1140)), axes=([3], [0]))[..., None]
    image_weight, frost_weight = FROST[severity - 1]
    return image_weight * x + frost_weight * crops


def frost_draws(key: jax.Array, count: int, height: int, width: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(which photograph, top, left) per image: a uniform choice of the five and a uniform crop position in it."""
    shapes = np.array([layer.shape[:2] for layer in frost_layers(height, width)])
    which_key, top_key, left_key = jax.random.split(key, 3)
    which = jax.random.randint(which_key, (count,), 0, len(FROST_FILES))
    spans = jnp.asarray(shapes - np.array([height, width]))[which]  # as numpy.random.randint(0, span)
    tops = jnp.floor(jax.random.uniform(top_key, (count,)) * spans[:, 0]).astype(jnp.int32)
    lefts = jnp.floor(jax.random.uniform(left_key, (count,)) * spans[:, 1]).astype(jnp.int32)
    return which, tops, lefts


def frost(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """A uniformly random photograph of the five and a uniformly random crop of it, per image."""
    return frost_at(x, severity, *frost_draws(key, *x.shape[:3]))


def plasma_draws(size: int) -> int:
    """How many uniform numbers the plasma fractal of side `size` uses: 3 per midpoint of every level."""
    return 3 * sum((size >> level) ** 2 for level in range(1, size.bit_length()))


def plasma_from_uniform(uniform: jax.Array, size: int, decay: float) -> jax.Array:
    """Diamond-square height maps of side `size` (a power of 2) in [0, 1], as ImageNet-C's plasma_fractal: each
    midpoint is the mean of its four neighbours plus U(-w, w) * w, w = 100 divided by `decay` per level. `uniform`
    (N, plasma_draws(size)) holds the U[0, 1) numbers, in the order ImageNet-C draws them."""
    heights, used, step, wibble = jnp.zeros((uniform.shape[0], size, size)), 0, size, 100.0

    def wibbled_mean(total):
        nonlocal used
        cells = total.shape[1] * total.shape[2]
        take = uniform[:, used:used + cells].reshape(total.shape)
        used += cells
        return total / 4 + wibble * (2.0 * wibble * take - wibble)

    while step >= 2:
        half = step // 2
        corners = heights[:, 0::step, 0::step]
        square = corners + jnp.roll(corners, -1, axis=1)
        heights = heights.at[:, half::step, half::step].set(wibbled_mean(square + jnp.roll(square, -1, axis=2)))
        centres = heights[:, half::step, half::step]
        around_top = centres + jnp.roll(centres, 1, axis=1) + corners + jnp.roll(corners, -1, axis=2)
        heights = heights.at[:, 0::step, half::step].set(wibbled_mean(around_top))
        around_left = centres + jnp.roll(centres, 1, axis=2) + corners + jnp.roll(corners, -1, axis=1)
        heights = heights.at[:, half::step, 0::step].set(wibbled_mean(around_left))
        step, wibble = half, wibble / decay
    heights = heights - jnp.min(heights, axis=(1, 2), keepdims=True)
    return heights / jnp.max(heights, axis=(1, 2), keepdims=True)


def fog_with(x: jax.Array, severity: int, plasma: jax.Array) -> jax.Array:
    """(x + c * plasma) * max / (max + c), `plasma` (N, H, W) in [0, 1], max the image's largest value."""
    strength = FOG[severity - 1][0]
    top = jnp.max(x, axis=(1, 2, 3), keepdims=True)
    return (x + strength * plasma[..., None]) * top / (top + strength)


def fog(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Fog of a plasma fractal on the next power of 2 above the longer side, cropped to the image."""
    n, height, width, _ = x.shape
    size = 1 << (max(height, width) - 1).bit_length()
    plasma = plasma_from_uniform(jax.random.uniform(key, (n, plasma_draws(size))), size, FOG[severity - 1][1])
    return fog_with(x, severity, plasma[:, :height, :width])


def snow_with(x: jax.Array, severity: int, normal: jax.Array, angles: jax.Array) -> jax.Array:
    """Snow from standard normal noise (N, H, W) and motion-blur angles (degrees, one per image)."""
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW[severity - 1]
    _, height, width, channels = x.shape
    flakes = filters.resample(mean + std * normal[..., None], filters.zoom_matrix(height, zoom, trim=False),
                              filters.zoom_matrix(width, zoom, trim=False))
    flakes = jnp.clip(jnp.where(flakes < threshold, 0.0, flakes), 0.0, 1.0)
    scale = filters.side_scale(x)
    flakes = filters.motion_blur_layer(flakes, max(1, round(radius * scale)), sigma * scale, angles)
    flakes = (jnp.round(flakes * 255.0) / 255.0)[:, :height, :width]
    gray = x if channels == 1 else jnp.tensordot(x, jnp.asarray(GRAY), axes=([3], [0]))[..., None]
    x = image_weight * x + (1 - image_weight) * jnp.maximum(x, gray * 1.5 + 0.5)
    return x + flakes + flakes[:, ::-1, ::-1]


def snow(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Zoomed thresholded noise, motion-blurred along a random angle in [-135, -45), added twice (the second
    turned 180 degrees) to the image brightened toward 1.5 * gray + 0.5."""
    noise_key, angle_key = jax.random.split(key)
    normal = jax.random.normal(noise_key, x.shape[:3])
    return snow_with(x, severity, normal, jax.random.uniform(angle_key, (x.shape[0],), minval=-135.0, maxval=-45.0))


def brightness(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """HSV value + c, clipped to 1, hue and saturation kept: every channel scaled by the new value / the old."""
    value = jnp.max(x, axis=-1, keepdims=True)
    brighter = jnp.minimum(value + BRIGHTNESS[severity - 1], 1.0)
    return jnp.where(value > 0, x * brighter / jnp.maximum(value, 1e-12), brighter)
