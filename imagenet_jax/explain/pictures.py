"""Pictures of what a classifier learned: its first-layer filters, a layer's feature maps, class-model images.

    filters = first_layer_filters(network)                        # uint8 [H, W, 3], AlexNet's Fig. 3
    maps = feature_maps(network, image, "stage1_block1")          # uint8 [H, W, 3], strongest channels first
    picture = class_model(network, 3, image_shape=(28, 28, 1))    # float pixels [28, 28, 1], Simonyan et al.

Every grid cell is min-max normalized on its own (a filter over all its input channels together, so an RGB
filter keeps its colour balance), because the cells differ in scale by orders of magnitude and one shared scale
would leave most of them flat grey. A constant cell is drawn mid-grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain.network import Network

# Abstract traces (jax.eval_shape) find the first convolution at this input size: large enough for every zoo
# model's stride and pooling arithmetic, and free, since nothing is computed.
_PROBE_SIZE = 299


def to_uint8(image: np.ndarray | jax.Array) -> np.ndarray:
    """Min-max normalizes an array to uint8 0..255 (a constant array becomes mid-grey 128)."""
    image = np.asarray(image, np.float64)
    low, high = image.min(), image.max()
    if high - low <= 0 or not np.isfinite(high - low):
        return np.full(image.shape, 128, np.uint8)
    return np.round((image - low) / (high - low) * 255).astype(np.uint8)


def grid(images: Sequence[np.ndarray] | np.ndarray, columns: int | None = None, *, scale: int = 1,
         separator: int = 1, background: int = 0) -> np.ndarray:
    """uint8 [H, W, 3] tiling of equally shaped uint8 images ([h, w], [h, w, 1] or [h, w, 3]) row by row.

    Each image is upscaled `scale` times by nearest neighbour; cells are `separator` pixels apart on `background`.
    """
    images = [np.asarray(image) for image in images]
    if not images:
        raise ValueError("grid() needs at least one image")
    cells = [_rgb(image) for image in images]
    cells = [np.repeat(np.repeat(cell, scale, axis=0), scale, axis=1) for cell in cells]
    height, width = cells[0].shape[:2]
    columns = columns or math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / columns)
    out = np.full((rows * height + (rows - 1) * separator, columns * width + (columns - 1) * separator, 3),
                  background, np.uint8)
    for index, cell in enumerate(cells):
        top, left = (index // columns) * (height + separator), (index % columns) * (width + separator)
        out[top:top + height, left:left + width] = cell
    return out


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"grid() draws [h, w], [h, w, 1] or [h, w, 3] images, not {image.shape}")
    return image.astype(np.uint8)


def _default_scale(size: int) -> int:
    # Nearest-neighbour upscaling to at least ~30 px per cell: a 3x3 kernel drawn 3 px wide is invisible.
    return max(1, 30 // size)


def first_conv_kernel(network: Network) -> tuple[str, np.ndarray]:
    """(module path, kernel [kh, kw, in, out]) of the first nn.Conv the model calls."""
    kernels = {name: kernel for name, kernel in _kernels(network.variables["params"], "")}
    if not kernels:
        raise ConfigError(f"{type(network.model).__name__} has no convolution kernel to draw.")
    # The first convolution reads the image, so its input channels are the image's: try each count the model's
    # kernels have (1 or 3 first) until an abstract forward pass traces, and record the first nn.Conv it calls.
    counts = sorted({int(k.shape[2]) for k in kernels.values()}, key=lambda c: (c not in (1, 3), c))
    for channels in counts:
        called: list[str] = []

        def interceptor(next_fun, args, kwargs, context, called=called):
            if isinstance(context.module, nn.Conv) and context.method_name == "__call__" and not called:
                called.append("/".join(str(part) for part in context.module.path))
            return next_fun(*args, **kwargs)

        def forward(pixels, interceptor=interceptor):
            with nn.intercept_methods(interceptor):
                return network.logits(pixels)

        try:
            jax.eval_shape(forward, jax.ShapeDtypeStruct((1, _PROBE_SIZE, _PROBE_SIZE, channels), jnp.float32))
        except (TypeError, ValueError, flax.errors.FlaxError):
            continue
        if called and called[0] in kernels:
            return called[0], np.asarray(kernels[called[0]], np.float32)
    raise ConfigError(f"could not find the first convolution of {type(network.model).__name__}.")


def _kernels(tree, prefix: str):
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if hasattr(value, "items"):
            yield from _kernels(value, name)
        elif key == "kernel" and np.ndim(value) == 4:
            yield prefix, value


def first_layer_filters(network: Network, columns: int | None = None, scale: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3] grid of the first convolution's kernels, each min-max normalized (AlexNet Fig. 3).

    Grey for a 1-channel input, RGB for 3 (other channel counts are averaged to grey); each kernel is upscaled
    `scale` times by nearest neighbour (default: to ~30 px), cells 1 px apart, `columns` default ceil(sqrt(count)).
    """
    _, kernel = first_conv_kernel(network)
    filters = np.moveaxis(kernel, -1, 0)  # [out, kh, kw, in]
    if filters.shape[-1] not in (1, 3):
        filters = filters.mean(axis=-1, keepdims=True)
    cells = [to_uint8(one) for one in filters]
    return grid(cells, columns, scale=scale or _default_scale(max(kernel.shape[:2])))


def channel_order(activation: np.ndarray) -> np.ndarray:
    """Channel indices of one feature map [h, w, C], the largest mean activation first (stable on ties)."""
    return np.argsort(-np.asarray(activation, np.float64).mean(axis=(0, 1)), kind="stable")


def feature_maps(network: Network, image: np.ndarray | jax.Array, layer: str, max_channels: int = 32,
                 columns: int | None = None, scale: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3] grid of `layer`'s output channels for one pixel image [h, w, c], strongest mean first."""
    network.check_layer(layer)
    _, activation = network.logits_and_activation(jnp.asarray(image, jnp.float32)[None], layer)
    activation = np.asarray(activation[0])
    if activation.ndim != 3:
        raise ConfigError(f"layer {layer!r} outputs shape {activation.shape[1:]}, not a feature map [h, w, C]; "
                          f"spatial layers: {', '.join(network.spatial_layers(jnp.asarray(image)[None]))}.")
    order = channel_order(activation)[:max_channels]
    cells = [to_uint8(activation[:, :, channel]) for channel in order]
    return grid(cells, columns, scale=scale or _default_scale(max(activation.shape[:2])))


def gaussian_blur(images: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian blur of images [..., H, W, C] over H and W (edges replicated), radius ceil(3 sigma)."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = jnp.asarray(taps / taps.sum(), jnp.float32)
    for axis in (-3, -2):
        size = images.shape[axis]
        pad = [(0, 0)] * images.ndim
        pad[axis] = (radius, radius)
        padded = jnp.pad(images, pad, mode="edge")
        images = sum(taps[i] * jax.lax.slice_in_dim(padded, i, i + size, axis=axis % images.ndim)
                     for i in range(2 * radius + 1))
    return images


def class_model(network: Network, target: int, *, image_shape: tuple[int, int, int], steps: int = 200,
                learning_rate: float = 2.0, l2: float = 1e-3, blur_every: int = 10, blur_sigma: float = 0.5,
                jitter: int | None = None, seed: int = 0) -> np.ndarray:
    """Float pixel image [H, W, C] in 0..255 maximizing the target's logit (Simonyan et al. 2014, class model).

    Gradient ascent on the logit (not the softmax, which also rises by lowering the other classes). Each step
    rolls the image by a random offset in [-jitter, jitter] (from jax.random.key(seed)), takes a step of
    `learning_rate` pixel units along the gradient normalized by its mean absolute value (so the rate means the
    same for every model), rolls back, decays the image toward the normalization mean by the fraction `l2` (the
    step of an L2 penalty), blurs it every `blur_every` steps with a Gaussian of `blur_sigma` px, and clips to
    0..255. It starts from the normalization mean plus N(0, 1 px) noise. The loop is one jitted lax.fori_loop.
    `jitter` defaults to height // 56 px: 4 at 224 px, 0 at 28-32 px, where on the tiny Fashion-MNIST test network
    a 1 px jitter (or a blur every 4 steps) kept 200 steps from reaching the target class.
    """
    jitter = image_shape[0] // 56 if jitter is None else jitter
    if steps < 0 or learning_rate <= 0 or l2 < 0 or l2 >= 1 or jitter < 0 or blur_every < 0:
        raise ConfigError("class_model needs steps >= 0, learning_rate > 0, 0 <= l2 < 1, jitter >= 0 and "
                          f"blur_every >= 0; got steps={steps}, learning_rate={learning_rate}, l2={l2}, "
                          f"jitter={jitter}, blur_every={blur_every}.")
    mean = jnp.broadcast_to(jnp.asarray(network.mean, jnp.float32), image_shape)
    noise_key, jitter_key = jax.random.split(jax.random.key(seed))

    def logit(image):
        return network.logits(image[None])[0, target]

    def step(index, image):
        dy, dx = jax.random.randint(jax.random.fold_in(jitter_key, index), (2,), -jitter, jitter + 1)
        rolled = jnp.roll(image, (dy, dx), axis=(0, 1))
        grad = jax.grad(logit)(rolled)
        rolled = rolled + learning_rate * grad / (jnp.mean(jnp.abs(grad)) + 1e-12)
        image = jnp.roll(rolled, (-dy, -dx), axis=(0, 1))
        image = mean + (1.0 - l2) * (image - mean)
        if blur_every:
            image = jax.lax.cond((index + 1) % blur_every == 0, lambda x: gaussian_blur(x, blur_sigma),
                                 lambda x: x, image)
        return jnp.clip(image, 0.0, 255.0)

    start = jnp.clip(mean + jax.random.normal(noise_key, image_shape), 0.0, 255.0)
    optimize = jax.jit(lambda image: jax.lax.fori_loop(0, steps, step, image))
    return np.asarray(optimize(start))
