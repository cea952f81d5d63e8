"""The image operations ImageNet-C's corruptions are built from, each following the library ImageNet-C used.

Images are float NHWC in [0, 1]. Filters whose shape is static (kernels, resampling matrices) are computed on the
host in numpy at trace time and applied on device; the border rule of each is the one of the library it mirrors:
scipy/skimage "nearest" = jnp "edge", scipy "reflect" = jnp "symmetric", OpenCV's default BORDER_REFLECT_101 =
jnp "reflect".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

REFERENCE_SIDE = 224  # ImageNet-C's pixel-sized parameters (blur radii and sigmas, shuffle distances) are for 224 px
HIGHEST = jax.lax.Precision.HIGHEST  # no TF32 on GPUs: the filters must agree with float64 host libraries


def side_scale(images: jax.Array) -> float:
    """The image's shorter side over 224: how much a pixel-sized ImageNet-C parameter is scaled."""
    return min(images.shape[1], images.shape[2]) / REFERENCE_SIDE


def gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d's normalized taps: radius int(truncate * sigma + 0.5)."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def _correlate_axis(x: jax.Array, taps: np.ndarray, axis: int, pad_mode: str) -> jax.Array:
    """Correlation of every channel of NHWC `x` with 1-D `taps` along `axis` (1 or 2), padded by `pad_mode`."""
    radius = len(taps) // 2
    widths = [(0, 0)] * 4
    widths[axis] = (radius, radius)
    padded = jnp.pad(x, widths, mode=pad_mode)
    shape = (len(taps), 1) if axis == 1 else (1, len(taps))
    return conv2d_valid(padded, np.asarray(taps).reshape(shape))


def conv2d_valid(x: jax.Array, kernel: np.ndarray) -> jax.Array:
    """Depthwise 'valid' correlation of every channel of NHWC `x` with the 2-D `kernel`."""
    channels = x.shape[-1]
    weights = jnp.tile(jnp.asarray(kernel, jnp.float32)[:, :, None, None], (1, 1, 1, channels))
    return jax.lax.conv_general_dilated(x, weights, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=channels, precision=HIGHEST)


def correlate2d(x: jax.Array, kernel: np.ndarray, pad_mode: str) -> jax.Array:
    """Same-size depthwise correlation with an odd-sized 2-D kernel (OpenCV filter2D with pad_mode="reflect")."""
    half_h, half_w = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = jnp.pad(x, ((0, 0), (half_h, half_h), (half_w, half_w), (0, 0)), mode=pad_mode)
    return conv2d_valid(padded, kernel)


def gaussian_filter(x: jax.Array, sigma: float | tuple[float, float], truncate: float = 4.0,
                    pad_mode: str = "edge") -> jax.Array:
    """scipy.ndimage.gaussian_filter over height and width (skimage.filters.gaussian with channel_axis=-1)."""
    sigma_h, sigma_w = (sigma, sigma) if np.isscalar(sigma) else sigma
    blurred = _correlate_axis(x, gaussian_taps(sigma_h, truncate), 1, pad_mode)
    return _correlate_axis(blurred, gaussian_taps(sigma_w, truncate), 2, pad_mode)


def translate_clamped(x: jax.Array, dy: jax.Array, dx: jax.Array) -> jax.Array:
    """out[b, i, j] = x[b, clip(i - dy[b]), clip(j - dx[b])]: a shift whose vacated border repeats the edge."""
    _, height, width, _ = x.shape
    rows = jnp.clip(jnp.arange(height)[None, :] - dy[:, None], 0, height - 1)
    cols = jnp.clip(jnp.arange(width)[None, :] - dx[:, None], 0, width - 1)
    shifted = jnp.take_along_axis(x, rows[:, :, None, None], axis=1)
    return jnp.take_along_axis(shifted, cols[:, None, :, None], axis=2)


def motion_blur_layer(x: jax.Array, radius: int, sigma: float, angles: jax.Array) -> jax.Array:
    """imagecorruptions' motion blur: 2*radius+1 edge-clamped shifts along `angles` (degrees, one per image),
    weighted by a half-Gaussian of `sigma` (the image itself weighted most)."""
    width = 2 * radius + 1
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    weights = weights / weights.sum()
    radians = jnp.deg2rad(angles.astype(jnp.float32))
    point_y, point_x = width * jnp.sin(radians), width * jnp.cos(radians)
    hypot = jnp.hypot(point_y, point_x)
    blurred = jnp.zeros_like(x)
    for step in range(width):  # widths stay below the image side, so no shift leaves the image
        dy = -jnp.ceil(step * point_y / hypot - 0.5).astype(jnp.int32)
        dx = -jnp.ceil(step * point_x / hypot - 0.5).astype(jnp.int32)
        blurred = blurred + float(weights[step]) * translate_clamped(x, dy, dx)
    return blurred


def zoom_matrix(size: int, zoom: float, trim: bool = True) -> np.ndarray:
    """(size, size) matrix of imagecorruptions' clipped_zoom along one axis: the centred ceil(size / zoom) crop
    zoomed by scipy.ndimage.zoom(order=1) (corner pixels aligned), its first `size` outputs kept (all if not
    `trim`: round(crop * zoom) >= size rows)."""
    crop = int(np.ceil(size / zoom))
    start = (size - crop) // 2
    zoomed = int(round(crop * zoom))
    coords = np.arange(zoomed) * ((crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0)
    low = np.minimum(np.floor(coords).astype(int), crop - 1)
    high = np.minimum(low + 1, crop - 1)
    fraction = coords - low
    matrix = np.zeros((zoomed, size))
    np.add.at(matrix, (np.arange(zoomed), start + low), 1.0 - fraction)
    np.add.at(matrix, (np.arange(zoomed), start + high), fraction)
    return matrix[:size] if trim else matrix


def resample(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    """out = rows @ image @ cols.T for every image and channel: a separable resampling given by two matrices."""
    rows, cols = jnp.asarray(rows, jnp.float32), jnp.asarray(cols, jnp.float32)
    return jnp.einsum("oh,nhwc,pw->nopc", rows, x, cols, precision=HIGHEST)


def pil_box_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) weights of PIL's BOX resampling (Image.resize(..., Image.BOX)): every input pixel whose centre
    falls in the output pixel's footprint, equally weighted."""
    scale = in_size / out_size
    support = 0.5 * max(scale, 1.0)
    matrix = np.zeros((out_size, in_size))
    for index in range(out_size):
        center = (index + 0.5) * scale
        low, high = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), in_size)
        taps = np.arange(low, high)
        offsets = (taps - center + 0.5) / max(scale, 1.0)
        weights = ((offsets > -0.5) & (offsets <= 0.5)).astype(float)
        matrix[index, taps] = weights / weights.sum()
    return matrix


def nearest_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) one-hot rows of PIL's NEAREST resize: output pixel i reads input floor((i + 0.5) * in / out)."""
    source = np.minimum(np.floor((np.arange(out_size) + 0.5) * in_size / out_size).astype(int), in_size - 1)
    return np.eye(in_size)[source]


def cubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) weights of OpenCV's INTER_CUBIC resize (a = -0.75, half-pixel centres, edge pixels repeated);
    when shrinking, the kernel is widened by the factor (antialiased), which OpenCV does not do."""
    scale = in_size / out_size
    widen = max(scale, 1.0)

    def cubic(t):
        t = np.abs(t)
        return np.where(t <= 1, (1.25 * t - 2.25) * t * t + 1,
                        np.where(t < 2, ((-0.75 * t + 3.75) * t - 6) * t + 3, 0.0))

    matrix = np.zeros((out_size, in_size))
    reach = int(math.ceil(2 * widen))
    for index in range(out_size):
        source = (index + 0.5) * scale - 0.5
        taps = np.arange(int(np.floor(source)) - reach + 1, int(np.floor(source)) + reach + 1)
        weights = cubic((taps - source) / widen)
        np.add.at(matrix[index], np.clip(taps, 0, in_size - 1), weights / weights.sum())
    return matrix
