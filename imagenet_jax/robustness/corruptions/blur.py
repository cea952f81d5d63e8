"""ImageNet-C's blur corruptions on float NHWC images in [0, 1], on device, with ImageNet-C's parameters.

Radii, sigmas and shuffle distances are ImageNet-C's for 224-pixel images and are scaled by (shorter side / 224),
so a 32-pixel image gets the same relative blur (at 224 px they are exactly ImageNet-C's). Motion blur follows
imagecorruptions' numpy re-implementation (ImageNet-C's own files were made with ImageMagick's motion blur).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.robustness.corruptions import filters

DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # disk radius, anti-alias sigma
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # sigma, max shift, passes
MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # radius, sigma
# ImageNet-C's zoom factors, np.arange(start, stop, step): float rounding makes the first include 1.11
ZOOM_BLUR = ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03))
GAUSSIAN_BLUR = (1, 2, 3, 4, 6)  # sigma of ImageNet-C's held-out "gaussian_blur" (not one of the 15)


def defocus_kernel(radius: float, alias_sigma: float, scale: float = 1.0) -> np.ndarray:
    """ImageNet-C's disk: pixels within `radius` on a grid of half-width max(8, radius), normalized, then smoothed
    by a 3x3 (5x5 above radius 8) Gaussian of `alias_sigma` with mirrored borders; all lengths times `scale`."""
    half = int(np.ceil(max(8, radius) * scale))
    grid = np.arange(-half, half + 1)
    disk = (grid[:, None] ** 2 + grid[None, :] ** 2 <= (radius * scale) ** 2).astype(np.float64)
    disk /= disk.sum()
    size = 3 if radius <= 8 else 5
    taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * (alias_sigma * scale) ** 2))
    taps /= taps.sum()
    padded = np.pad(disk, size // 2, mode="reflect")
    rows = sum(taps[i] * padded[i:i + disk.shape[0], :] for i in range(size))
    return sum(taps[i] * rows[:, i:i + disk.shape[1]] for i in range(size))


def defocus_blur(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Correlation with ImageNet-C's anti-aliased disk (OpenCV filter2D, mirrored borders)."""
    radius, alias_sigma = DEFOCUS_BLUR[severity - 1]
    return filters.correlate2d(x, defocus_kernel(radius, alias_sigma, filters.side_scale(x)), "reflect")


@functools.lru_cache(maxsize=16)
def copy_waves(height: int, width: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet-C's sequential pixel loop (rows, then columns, from the far corner inward) regrouped into waves.

    The step at (h, w) reads (h + dy, w + dx), dy and dx in [-reach, reach), so it touches rows [h - reach,
    h + reach) and columns [w - reach, w + reach). Wave (W - reach - w) + (H - reach - h) * 2 * reach puts every
    two steps that may touch the same pixel in their loop order and makes the steps of one wave disjoint, so doing
    a wave at once gives the loop's result. Returns (waves, slots) flat pixel indices and which slots are real
    (the padding slots copy pixel 0, which no real step reaches, onto itself).
    """
    rows = np.arange(height - reach, reach, -1)
    cols = np.arange(width - reach, reach, -1)
    h, w = (grid.ravel() for grid in np.meshgrid(rows, cols, indexing="ij"))
    wave = (width - reach - w) + (height - reach - h) * 2 * reach
    order = np.argsort(wave, kind="stable")
    wave, flat = wave[order], (h * width + w)[order]
    starts = np.searchsorted(wave, np.arange(wave.max() + 1))
    slot = np.arange(len(wave)) - starts[wave]
    positions = np.zeros((wave.max() + 1, slot.max() + 1), np.int32)
    real = np.zeros(positions.shape, bool)
    positions[wave, slot], real[wave, slot] = flat, True
    return positions, real


def shuffle_pixels(x: jax.Array, reach: int, passes: int, key: jax.Array) -> jax.Array:
    """ImageNet-C's local pixel "shuffle": `passes` times, each interior pixel in turn takes the value of a random
    neighbour. ImageNet-C means to swap the two, but its tuple assignment of numpy views copies the neighbour
    and leaves it as it was; we do what its code does, since that is what its published images show."""
    n, height, width, channels = x.shape
    positions, real = (jnp.asarray(a) for a in copy_waves(height, width, reach))
    batch = jnp.arange(n)[:, None]

    def copy_wave(step, carry):
        flat, pass_key = carry
        dy, dx = jax.random.randint(jax.random.fold_in(pass_key, step), (2, n, positions.shape[1]), -reach, reach)
        here = jnp.broadcast_to(positions[step], (n, positions.shape[1]))
        there = here + jnp.where(real[step], dy * width + dx, 0)
        return flat.at[batch, here].set(flat[batch, there]), pass_key

    flat = x.reshape(n, height * width, channels)
    for pass_key in jax.random.split(key, passes):
        flat, _ = jax.lax.fori_loop(0, positions.shape[0], copy_wave, (flat, pass_key))
    return flat.reshape(x.shape)


def glass_blur(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Gaussian blur, 8-bit truncation, local pixel shuffle, Gaussian blur again (skimage, edge borders)."""
    sigma, reach, passes = GLASS_BLUR[severity - 1]
    scale = filters.side_scale(x)
    blurred = jnp.floor(filters.gaussian_filter(x, sigma * scale) * 255.0) / 255.0  # np.uint8 of the first blur
    shuffled = shuffle_pixels(blurred, max(1, round(reach * scale)), passes, key)
    return filters.gaussian_filter(shuffled, sigma * scale)


def motion_blur_at(x: jax.Array, severity: int, angles: jax.Array) -> jax.Array:
    """Motion blur of ImageNet-C's severity along the given angles (degrees, one per image)."""
    radius, sigma = MOTION_BLUR[severity - 1]
    scale = filters.side_scale(x)
    return filters.motion_blur_layer(x, max(1, round(radius * scale)), sigma * scale, angles)


def motion_blur(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Motion blur along a uniformly random angle in [-45, 45) degrees per image."""
    return motion_blur_at(x, severity, jax.random.uniform(key, (x.shape[0],), minval=-45.0, maxval=45.0))


def zoom_blur(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Mean of the image and its centre zoomed by each of ImageNet-C's factors (bilinear, scipy's geometry)."""
    _, height, width, _ = x.shape
    factors = np.arange(*ZOOM_BLUR[severity - 1])
    total = x
    for factor in factors:
        total = total + filters.resample(x, filters.zoom_matrix(height, factor), filters.zoom_matrix(width, factor))
    return total / (len(factors) + 1)


def gaussian_blur(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """ImageNet-C's held-out Gaussian blur (skimage, edge borders), sigma 1 ... 6 at 224 px; not one of the 15."""
    return filters.gaussian_filter(x, GAUSSIAN_BLUR[severity - 1] * filters.side_scale(x))
