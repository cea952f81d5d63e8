"""Attribution methods: which pixels of an image a classifier's score for one class depends on.

    maps = attribute(network, "integrated_gradients", images, targets=None, steps=32)   # numpy [N, H, W]

gradient               |d logit / d x|, max over channels (Simonyan, Vedaldi & Zisserman 2014)
gradient_x_input       d logit / d x * x, summed over channels, signed (Shrikumar et al. 2016)
smoothgrad             gradients averaged over noisy copies of the image (Smilkov et al. 2017)
integrated_gradients   (x - baseline) * the gradient averaged along the straight path (Sundararajan et al. 2017)
gradcam                ReLU of a layer's channels weighted by their mean gradient (Selvaraju et al. 2017)
gradcam_plus_plus      Grad-CAM with positive gradients weighted in closed form (Chattopadhay et al. 2018)
occlusion              drop of the class probability when a patch is hidden (Zeiler & Fergus 2014)
lime                   a weighted linear model of the class probability over superpixels (Ribeiro et al. 2016)

Every method is `fn(network, images, targets, **options) -> [N, H, W] float32` on float pixel images (0..255),
registered in METHODS with its option defaults (read from its signature) and a check of their values. All but
`lime` (superpixels are computed on the host) are pure and jit-compatible; `attribute` compiles and batches them.
occlusion and lime are defined in occlusion_lime.py and registered here.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import occlusion_lime
from imagenet_jax.explain.network import Network
from imagenet_jax.parallel.mesh import BATCH_AXES, batch_sharded, make_data_mesh, replicated
from imagenet_jax.registry import Registry

Method = Callable[..., Any]
METHODS: Registry[Method] = Registry("attribution method", config_key="method")


# ------------------------------------------------------------------------------------------- option checks

def _integer(low: int, high: int | None = None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            return "must be an integer"
        if value < low or (high is not None and value > high):
            return f"must be in [{low}, {high}]" if high is not None else f"must be >= {low}"
        return None
    return check


def _number(low: float, high: float | None = None, *, open_low: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            return "must be a number"
        too_high = high is not None and value > high
        if not math.isfinite(value) or value < low or (open_low and value == low) or too_high:
            bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            return f"must be {bound}"
        return None
    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _choice(*valid: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in valid else f"must be one of {', '.join(map(repr, valid))}"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string (a layer name; '' for the default layer)"


def _register(name: str, jit: bool = True, **validators: Callable[[Any], str | None]) -> Callable[[Method], Method]:
    """Registers `fn` under `name`; its keyword-only parameters are its options, their defaults the defaults."""

    def add(fn: Method) -> Method:
        defaults = {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY}
        assert set(defaults) == set(validators), f"{name}: every option needs a validator"

        def check(options: dict[str, Any], image_shape: tuple[int, ...] | None = None) -> None:
            for option, value in options.items():
                problem = validators[option](value)
                # the one option bounded by the image: an occlusion patch must fit in it
                if problem is None and image_shape is not None and option == "patch" and value > min(image_shape[:2]):
                    problem = f"must be at most the image size {min(image_shape[:2])}"
                if problem:
                    raise ConfigError(f"{name}: {option}={value!r} {problem}.")

        return METHODS.register(name, fn, check=check, defaults=defaults, jit=jit)

    return add


# ------------------------------------------------------------------------------------------- gradients

def _target_sum(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Sum over the batch of each image's target logit: its gradient holds every image's own gradient (the images
    do not interact in eval mode)."""
    return jnp.take_along_axis(logits, targets[:, None].astype(jnp.int32), axis=1).sum()


def _input_gradients(network: Network, images: jax.Array, targets: jax.Array) -> jax.Array:
    return jax.grad(lambda x: _target_sum(network.logits(x), targets))(images.astype(jnp.float32))


@_register("gradient")
def gradient(network: Network, images: jax.Array, targets: jax.Array) -> jax.Array:
    """Max over channels of |d logit_target / d pixel|."""
    return jnp.abs(_input_gradients(network, images, targets)).max(axis=-1)


@_register("gradient_x_input")
def gradient_x_input(network: Network, images: jax.Array, targets: jax.Array) -> jax.Array:
    """Sum over channels of gradient * pixel value (signed)."""
    return (_input_gradients(network, images, targets) * images).sum(axis=-1)


def smoothgrad_noise(seed: int, sample: int, shape: tuple[int, ...]) -> jax.Array:
    """SmoothGrad's standard normal noise for one sample: the same for every image of a batch, so a map depends
    only on its image and the seed, never on its position in a batch (batch_size and device count)."""
    return jax.random.normal(jax.random.fold_in(jax.random.key(seed), sample), shape, jnp.float32)


@_register("smoothgrad", samples=_integer(1), noise_fraction=_number(0.0), magnitude=_boolean, seed=_integer(0))
def smoothgrad(network: Network, images: jax.Array, targets: jax.Array, *, samples: int = 25,
               noise_fraction: float = 0.15, magnitude: bool = False, seed: int = 0) -> jax.Array:
    """Mean gradient (magnitude=True: mean squared gradient) over `samples` copies plus Gaussian noise of std
    noise_fraction * (max - min) of each image; reduced like `gradient` (max over channels of the absolute)."""
    images = images.astype(jnp.float32)
    sigma = noise_fraction * (images.max(axis=(1, 2, 3), keepdims=True) - images.min(axis=(1, 2, 3), keepdims=True))

    def add(total: jax.Array, sample: jax.Array) -> tuple[jax.Array, None]:
        grads = _input_gradients(network, images + sigma * smoothgrad_noise(seed, sample, images.shape[1:]), targets)
        return total + (grads * grads if magnitude else grads), None

    total, _ = jax.lax.scan(add, jnp.zeros_like(images), jnp.arange(samples))  # one gradient in memory at a time
    return jnp.abs(total / samples).max(axis=-1)


def _baseline(network: Network, images: jax.Array, kind: str) -> jax.Array:
    """black: 0; white: 255; mean: the normalization mean pixel (the model's input is 0 there)."""
    pixel = {"black": 0.0, "white": 255.0}.get(kind)
    value = jnp.asarray(network.mean if pixel is None else pixel, jnp.float32)
    return jnp.broadcast_to(value, images.shape)


@_register("integrated_gradients", steps=_integer(1), baseline=_choice("black", "mean", "white"))
def integrated_gradients(network: Network, images: jax.Array, targets: jax.Array, *, steps: int = 64,
                         baseline: str = "black") -> jax.Array:
    """Sum over channels of (x - baseline) * the path-averaged gradient, signed, by the midpoint rule: gradients at
    alpha = (k + 1/2) / steps, k < steps (error O(1/steps^2)); the map sums to ~ f(x) - f(baseline)."""
    images = images.astype(jnp.float32)
    start = _baseline(network, images, baseline)

    def add(total: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
        alpha = (k.astype(jnp.float32) + 0.5) / steps
        return total + _input_gradients(network, start + alpha * (images - start), targets), None

    total, _ = jax.lax.scan(add, jnp.zeros_like(images), jnp.arange(steps))
    return ((images - start) * total / steps).sum(axis=-1)


# ------------------------------------------------------------------------------------------- class activation maps

def _layer_gradients(network: Network, images: jax.Array, targets: jax.Array,
                     layer: str) -> tuple[jax.Array, jax.Array]:
    """(activation [N, h, w, C] of `layer`, d logit_target / d activation), from one forward and backward pass."""
    layer = layer or network.default_layer(images)
    shape = jax.eval_shape(lambda x: network.logits_and_activation(x, layer)[1], images)

    def score(delta: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits, activation = network.logits_with_delta(images, layer, delta)
        return _target_sum(logits, targets), activation

    grads, activation = jax.grad(score, has_aux=True)(jnp.zeros(shape.shape, jnp.float32))
    return activation, grads


def _cam(activation: jax.Array, weights: jax.Array, images: jax.Array) -> jax.Array:
    """ReLU(sum_c weights_c * activation_c), resized bilinearly (half-pixel centres) to the image's size."""
    cam = jax.nn.relu(jnp.einsum("nhwc,nc->nhw", activation, weights))
    return jax.image.resize(cam, (cam.shape[0], *images.shape[1:3]), method="bilinear")


@_register("gradcam", layer=_string)
def gradcam(network: Network, images: jax.Array, targets: jax.Array, *, layer: str = "") -> jax.Array:
    """Grad-CAM at `layer` ('' = network.default_layer): channel weights are the spatial mean gradient."""
    activation, grads = _layer_gradients(network, images, targets, layer)
    return _cam(activation, grads.mean(axis=(1, 2)), images)


@_register("gradcam_plus_plus", layer=_string)
def gradcam_plus_plus(network: Network, images: jax.Array, targets: jax.Array, *, layer: str = "") -> jax.Array:
    """Grad-CAM++: weights sum_ij alpha_ij ReLU(g_ij), alpha = g^2 / (2 g^2 + sum_ab A_ab g^3)."""
    activation, grads = _layer_gradients(network, images, targets, layer)
    # With Y = exp(score) and a piecewise-linear network, Y's 2nd and 3rd derivatives are exp(score) g^2 and g^3:
    # exp(score) cancels in alpha and only scales the whole map in the weights, so it is left out (it overflows).
    g2, g3 = grads**2, grads**3
    denominator = 2 * g2 + activation.sum(axis=(1, 2), keepdims=True) * g3
    alpha = jnp.where(denominator != 0, g2 / jnp.where(denominator != 0, denominator, 1.0), 0.0)
    return _cam(activation, (alpha * jax.nn.relu(grads)).sum(axis=(1, 2)), images)


# ------------------------------------------------------------------------------------------- perturbation
# Defined in occlusion_lime.py (which imports nothing from here); `lime` runs SLIC on the host, so it is not jitted.

occlusion = _register("occlusion", patch=_integer(1), stride=_integer(1),
                      fill=_choice("mean", "zero"))(occlusion_lime.occlusion)
lime = _register("lime", jit=False, segments=_integer(1), samples=_integer(2),
                 keep_probability=_number(0.0, 1.0, open_low=True), kernel_width=_number(0.0, open_low=True),
                 seed=_integer(0))(occlusion_lime.lime)


# ------------------------------------------------------------------------------------------- the public API

def method_names() -> list[str]:
    """Every registered attribution method, sorted."""
    return METHODS.names()


def method_defaults(name: str) -> dict[str, Any]:
    """The options of method `name` with their defaults; UnknownNameError with near matches for an unknown name."""
    return dict(METHODS.info(name)["defaults"])


def resolve_options(method: str, image_shape: tuple[int, ...] | None = None, **options: Any) -> dict[str, Any]:
    """`options` merged over the defaults of `method`, checked; ConfigError names a bad or unknown option."""
    defaults = method_defaults(method)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) if defaults else "none"
        raise ConfigError(f"{method}: unknown option {unknown[0]!r}; its options are: {valid}.")
    merged = {**defaults, **options}
    METHODS.check(method, merged, image_shape=image_shape)
    return merged


@functools.lru_cache(maxsize=32)
def _compiled(method: str, model: Any, mean: tuple, std: tuple, options: tuple, mesh: Any) -> Callable:
    """The method jitted with its options baked in, variables replicated and the batch sharded over `mesh`."""
    fn = METHODS.get(method)

    def run(variables: Any, images: jax.Array, targets: jax.Array) -> jax.Array:
        return fn(Network(model, variables, mean, std), images, targets, **dict(options)).astype(jnp.float32)

    batch = batch_sharded(mesh)
    return jax.jit(run, in_shardings=(replicated(mesh), batch, batch), out_shardings=batch)


@functools.lru_cache(maxsize=8)
def _compiled_classes(model: Any, mean: tuple, std: tuple, mesh: Any) -> Callable:
    run = lambda variables, images: jnp.argmax(Network(model, variables, mean, std).logits(images), axis=-1)
    return jax.jit(run, in_shardings=(replicated(mesh), batch_sharded(mesh)), out_shardings=batch_sharded(mesh))


def _in_batches(run: Callable, arrays: list[np.ndarray], batch_size: int, devices: int) -> np.ndarray:
    """run(*batch) over fixed-size batches (a multiple of `devices`), the last padded by repeating its last row."""
    count = len(arrays[0])
    size = -(-min(batch_size, count) // devices) * devices
    outputs = []
    for start in range(0, count, size):
        parts = [array[start:start + size] for array in arrays]
        padding = size - len(parts[0])
        parts = [np.concatenate([part, np.repeat(part[-1:], padding, 0)]) if padding else part for part in parts]
        outputs.append(np.asarray(run(*parts))[:size - padding])
    return np.concatenate(outputs)


def _process_mesh() -> jax.sharding.Mesh:
    """Every device of this process on the data axis: explanations are per image and one process may compute them
    alone (the report on process 0 of a multi-process job), with no collective the others never enter."""
    if jax.process_count() == 1:
        return make_data_mesh()
    return jax.sharding.Mesh(np.array(jax.local_devices()).reshape(-1, 1), BATCH_AXES)


def attribute(network: Network, method: str, images: Any, targets: Any = None, *, batch_size: int = 32,
              **options: Any) -> np.ndarray:
    """Maps [N, H, W] float32 of `method` for float pixel images [N, H, W, C] (0..255) and int targets [N]
    (None: each image's predicted class), batch by batch, each batch sharded over every device."""
    METHODS.get(method)
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ConfigError(f"{method}: images must be [N, H, W, C] pixels, not of shape {images.shape}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive integer.")
    options = resolve_options(method, images.shape[1:], **options)
    if len(images) == 0:
        return np.zeros(images.shape[:3], np.float32)
    mesh = _process_mesh()
    devices = mesh.devices.size
    key = (network.model, tuple(network.mean), tuple(network.std))
    variables = jax.device_put(network.variables, replicated(mesh))
    if targets is None:
        classes = _compiled_classes(*key, mesh)
        targets = _in_batches(lambda x: classes(variables, x), [images], batch_size, devices)
    targets = np.asarray(targets).reshape(-1)
    classes = jax.eval_shape(network.logits, jax.ShapeDtypeStruct((1, *images.shape[1:]), jnp.float32)).shape[-1]
    if len(targets) != len(images) or not np.issubdtype(targets.dtype, np.integer) or np.any(targets < 0) or np.any(
            targets >= classes):  # take_along_axis would clamp an out-of-range class silently
        raise ConfigError(f"{method}: targets must be {len(images)} class indices in [0, {classes}), one per image; "
                          f"got {targets.tolist()[:8]} ({len(targets)}).")
    targets = targets.astype(np.int32)
    if not METHODS.info(method)["jit"]:  # host work inside (lime): it compiles its own batched predictor
        run = lambda x, t: METHODS.get(method)(network, x, t, **options)
        return _in_batches(run, [images, targets], batch_size, 1).astype(np.float32)
    compiled = _compiled(method, *key, tuple(sorted(options.items())), mesh)
    return _in_batches(lambda x, t: compiled(variables, x, t), [images, targets], batch_size, devices)
