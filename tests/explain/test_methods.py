"""Attribution methods compute what their papers define: completeness, parity with PAIR's saliency package and with
a PyTorch Grad-CAM, occlusion and LIME on a model whose answer depends on one known region, and option checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import methods
from imagenet_jax.explain.methods import attribute, method_defaults, method_names
from imagenet_jax.explain.network import Network
from imagenet_jax.registry import UnknownNameError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGENET_MEAN = tuple(255 * m for m in (0.485, 0.456, 0.406))
IMAGENET_STD = tuple(255 * s for s in (0.229, 0.224, 0.225))
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (72.94,), (90.02,)  # configs/default.py's normalization


def random_variables(model: nn.Module, image_shape: tuple[int, ...], seed: int = 0):
    """He-normal kernels, random biases and BN statistics, filled in from the variables' shapes (tracing the init is
    instant; compiling or running it op by op would take seconds)."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape)), train=False))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            return (rng.standard_normal(leaf.shape) * np.sqrt(2 / np.prod(leaf.shape[:-1]))).astype(np.float32)
        if "var" in name or "scale" in name:
            return (1 + 0.1 * rng.random(leaf.shape)).astype(np.float32)
        return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)  # biases, BN offsets and means

    return jax.tree_util.tree_map_with_path(fill, shapes)


def small_network(seed: int = 0) -> Network:
    """resnet_small (Fashion-MNIST's default model, 28x28x1) with random weights and random BN statistics."""
    model = models.create("resnet_small", num_classes=10)
    return Network(model, random_variables(model, (28, 28, 1), seed), FASHION_MNIST_MEAN, FASHION_MNIST_STD)


def small_images(count: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, 28, 28, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def network() -> Network:
    return small_network()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return small_images()


TARGETS = np.array([3, 7, 1])


# ------------------------------------------------------------------------------------------- 1. completeness

@pytest.mark.parametrize("baseline", ["black", "mean"])
def test_integrated_gradients_sums_to_the_logit_difference_from_the_baseline(network, images, baseline):
    start = np.broadcast_to(np.asarray(0.0 if baseline == "black" else network.mean, np.float32), images.shape)
    differences = np.asarray(network.logits(jnp.asarray(images)) - network.logits(jnp.asarray(start)))
    targets = np.abs(differences).argmax(axis=1)  # the class whose logit moves most: a 1% check that means something
    difference = differences[np.arange(len(targets)), targets]
    assert np.all(np.abs(difference) > 0.1)
    maps = attribute(network, "integrated_gradients", images, targets, steps=128, baseline=baseline)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), difference, rtol=0.01)


# ------------------------------------------------------------------------------------------- 2. PAIR's saliency

@pytest.fixture(scope="module")
def saliency():
    return pytest.importorskip("saliency.core")


@jax.jit
def small_network_gradients(variables, batch: jax.Array, target: jax.Array) -> jax.Array:
    """d logit_target / d pixels of resnet_small (jitted once: the weights and the target are arguments)."""
    network = Network(models.create("resnet_small", num_classes=10), variables, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    return methods._input_gradients(network, batch, jnp.full(len(batch), target))


def pair_model_function(saliency, network: Network, target: int):
    """PAIR's call_model_function: input gradients of the target logit for a batch of single images (jitted once:
    the weights and the target are arguments)."""

    def call(batch, call_model_args=None, expected_keys=None):
        grads = small_network_gradients(network.variables, jnp.asarray(batch, jnp.float32), target)
        return {saliency.INPUT_OUTPUT_GRADIENTS: np.asarray(grads)}

    return call


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_integrated_gradients_matches_pair_saliency(saliency, network, images):
    steps = 16
    ours = attribute(network, "integrated_gradients", images, TARGETS, steps=steps, baseline="mean")
    for index, (image, target) in enumerate(zip(images, TARGETS)):
        baseline = np.broadcast_to(np.asarray(network.mean, np.float32), image.shape)
        # PAIR integrates at linspace(0, 1, steps) (both ends) and scales by 1/steps; ours is the midpoint rule. The
        # straight path from baseline + (x-b)/2n to x - (x-b)/2n puts PAIR's points exactly on our midpoints, and
        # shortens x - baseline by (n-1)/n: ours = PAIR's * n / (n-1), exactly.
        shift = (image - baseline) / (2 * steps)
        reference = saliency.IntegratedGradients().GetMask(
            image - shift, pair_model_function(saliency, network, int(target)), x_baseline=baseline + shift,
            x_steps=steps, batch_size=steps)
        expected = reference.sum(axis=-1) * steps / (steps - 1)
        # Equal to float precision, except where a path point lies on a ReLU or max-pool kink and the two batch
        # compositions' float rounding pick different sides: that point's gradient, 1/steps of the sum, differs for
        # the pixels behind that unit (seen on the Intel Xeon VM: 30 of 784 pixels of one image, 1e-3 relative).
        errors = np.abs(ours[index] - expected) / np.abs(expected).max()
        assert np.mean(errors < 1e-4) >= 0.95 and errors.max() < 1 / steps, (index, float(errors.max()))


def test_gradient_matches_pair_saliency(saliency, network, images):
    ours = attribute(network, "gradient", images, TARGETS)
    for index, (image, target) in enumerate(zip(images, TARGETS)):
        reference = saliency.GradientSaliency().GetMask(image, pair_model_function(saliency, network, int(target)))
        assert relative_error(ours[index], np.abs(reference).max(axis=-1)) < 1e-5


@pytest.mark.parametrize("magnitude", [False, True])
def test_smoothgrad_matches_pair_saliency_given_the_same_noise(saliency, network, images, monkeypatch, magnitude):
    samples, fraction, seed = 6, 0.2, 3
    ours = attribute(network, "smoothgrad", images, TARGETS, samples=samples, noise_fraction=fraction, seed=seed,
                     magnitude=magnitude)
    for index, (image, target) in enumerate(zip(images, TARGETS)):
        drawn = iter(range(samples))

        def same_noise(mean, std, shape, drawn=drawn):  # PAIR draws np.random.normal(0, std, shape) per sample
            return std * np.asarray(methods.smoothgrad_noise(seed, next(drawn), shape))

        monkeypatch.setattr(np.random, "normal", same_noise)
        reference = saliency.GradientSaliency().GetSmoothedMask(
            image, pair_model_function(saliency, network, int(target)), stdev_spread=fraction, nsamples=samples,
            magnitude=magnitude)
        assert next(drawn, None) is None  # every noise sample was used
        assert relative_error(ours[index], np.abs(reference).max(axis=-1)) < 1e-4


# ------------------------------------------------------------------------------------------- 3. Grad-CAM vs PyTorch

def photos(size: int) -> np.ndarray:
    from skimage import data, transform

    return np.stack([transform.resize(image, (size, size), preserve_range=True, anti_aliasing=True)
                     for image in (data.astronaut(), data.chelsea())]).astype(np.float32)


def torch_class_activation_maps(model, images: np.ndarray, targets: np.ndarray, plus_plus: bool) -> np.ndarray:
    """Grad-CAM(++) at layer4 with hooks: the reference implementation written from the papers."""
    import torch

    saved = {}
    hook = model.layer4.register_forward_hook(lambda module, inputs, output: saved.update(activation=output))
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    pixels = torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())
    logits = model(pixels)
    saved["activation"].retain_grad()
    logits[torch.arange(len(targets)), torch.from_numpy(targets)].sum().backward()
    hook.remove()
    activation, grads = saved["activation"].detach(), saved["activation"].grad
    if plus_plus:
        denominator = 2 * grads**2 + activation.sum(dim=(2, 3), keepdim=True) * grads**3
        alpha = torch.where(denominator != 0, grads**2 / denominator, torch.zeros_like(denominator))
        weights = (alpha * torch.relu(grads)).sum(dim=(2, 3))
    else:
        weights = grads.mean(dim=(2, 3))
    cam = torch.relu((weights[:, :, None, None] * activation).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=images.shape[1:3], mode="bilinear", align_corners=False)
    return cam[:, 0].detach().numpy()


@pytest.mark.parametrize("method", ["gradcam", "gradcam_plus_plus"])
def test_gradcam_matches_pytorch_hooks_on_resnet18(method):
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    sys.path.insert(0, os.path.join(REPO, "tests", "convert"))
    from test_torchvision_parity import randomized_torchvision_model

    from imagenet_jax.convert import from_torchvision

    reference = randomized_torchvision_model("resnet18").eval()
    network = Network(models.create("resnet18", num_classes=1000), from_torchvision(reference.state_dict(),
                                                                                    "resnet18"),
                      IMAGENET_MEAN, IMAGENET_STD)
    images = photos(112)
    targets = np.array([1, 500])
    expected = torch_class_activation_maps(reference, images, targets, plus_plus=method == "gradcam_plus_plus")
    ours = attribute(network, method, images, targets, layer="stage4_block2")
    assert expected.max() > 0
    assert relative_error(ours, expected) < 1e-4
    assert network.default_layer(jnp.asarray(images)) == "stage4_block2"  # layer4's output is the default


# ------------------------------------------------------------------------------------------- 4-5. a known region

class RegionModel(nn.Module):
    """Logit 0 is the mean normalized pixel of one square, logit 1 is zero: only that square matters."""

    top: int = 8
    left: int = 8
    size: int = 16

    @nn.compact
    def __call__(self, x, train: bool = False):
        region = x[:, self.top:self.top + self.size, self.left:self.left + self.size, :].mean(axis=(1, 2, 3))
        return jnp.stack([4 * region, jnp.zeros_like(region)], axis=-1)


def region_setup() -> tuple[Network, np.ndarray, np.ndarray]:
    """A 32x32 RGB image of 8x8 blocks of random brightness (SLIC's superpixels follow them), the region bright."""
    rng = np.random.default_rng(0)
    blocks = rng.uniform(40, 255, (2, 4, 4, 3))
    blocks[:, 1:3, 1:3] = rng.uniform(150, 255, (2, 2, 2, 3))
    images = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2).astype(np.float32)
    inside = np.zeros((32, 32), bool)
    inside[8:24, 8:24] = True
    return Network(RegionModel(), {}, (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)), images, inside


def test_gradient_x_input_and_integrated_gradients_of_a_linear_logit_sum_to_it():
    network, images, inside = region_setup()
    logit = np.asarray(network.logits(jnp.asarray(images)))[:, 0]  # linear in the pixels, 0 at black
    for method, options in (("gradient_x_input", {}), ("integrated_gradients", {"steps": 4})):
        maps = attribute(network, method, images, np.zeros(2, int), **options)
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), logit, rtol=1e-5)
        assert np.all(maps[:, ~inside] == 0)


def test_occlusion_puts_its_mass_in_the_region_the_logit_reads():
    network, images, inside = region_setup()
    maps = attribute(network, "occlusion", images, np.zeros(2, int), patch=2, stride=1, fill="zero")
    near = np.zeros((32, 32), bool)
    near[7:25, 7:25] = True  # within patch - 1 pixels of the region: only there may a covering patch touch it
    for saliency_map in maps:
        positive = np.maximum(saliency_map, 0)
        assert positive[inside].sum() > 0.9 * positive.sum()
        assert inside.ravel()[np.argmax(saliency_map)]
        assert np.all(saliency_map[~near] == 0)


def test_lime_gives_the_regions_superpixels_the_largest_coefficients_deterministically():
    from skimage.segmentation import slic

    network, images, inside = region_setup()
    options = {"segments": 16, "samples": 200, "seed": 1}
    maps = attribute(network, "lime", images, np.zeros(2, int), **options)
    for image, saliency_map in zip(images, maps):
        labels = slic(image / 255, n_segments=16, start_label=0, channel_axis=-1)
        overlapping = np.unique(labels[inside])
        coefficients = {label: saliency_map[labels == label][0] for label in np.unique(labels)}
        lowest_overlapping = min(coefficients[label] for label in overlapping)
        assert all(coefficients[label] < lowest_overlapping for label in coefficients if label not in overlapping)
    np.testing.assert_array_equal(attribute(network, "lime", images, np.zeros(2, int), **options), maps)
    assert not np.array_equal(attribute(network, "lime", images, np.zeros(2, int), **{**options, "seed": 2}), maps)


def test_lime_surrogate_is_scikit_learns_weighted_ridge_as_lime_fits_it():
    linear_model = pytest.importorskip("sklearn.linear_model")
    from imagenet_jax.explain.occlusion_lime import _weighted_ridge

    rng = np.random.default_rng(0)
    masks, probabilities, weights = (rng.random((200, 12)) < 0.5).astype(float), rng.random(200), rng.random(200)
    expected = linear_model.Ridge(alpha=1.0).fit(masks, probabilities, sample_weight=weights).coef_
    np.testing.assert_allclose(_weighted_ridge(masks, probabilities, weights), expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------- 6. options, batching

def test_every_method_is_registered_with_its_option_defaults():
    assert method_names() == sorted(["gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "gradcam",
                                     "gradcam_plus_plus", "occlusion", "lime"])
    assert method_defaults("smoothgrad") == {"samples": 25, "noise_fraction": 0.15, "magnitude": False, "seed": 0}
    assert method_defaults("integrated_gradients") == {"steps": 64, "baseline": "black"}
    assert method_defaults("occlusion") == {"patch": 8, "stride": 4, "fill": "mean"}
    assert method_defaults("lime") == {"segments": 50, "samples": 500, "keep_probability": 0.5,
                                       "kernel_width": 0.25, "seed": 0}
    assert method_defaults("gradcam") == method_defaults("gradcam_plus_plus") == {"layer": ""}


def test_unknown_method_and_bad_options_are_config_errors_naming_them(network, images):
    with pytest.raises(UnknownNameError, match="Did you mean gradcam"):
        attribute(network, "gradcm", images)
    with pytest.raises(UnknownNameError, match="Did you mean"):
        method_defaults("smoothgrd")
    with pytest.raises(ConfigError, match="unknown option 'step'.*steps, baseline"):
        attribute(network, "integrated_gradients", images, step=3)
    bad = [("integrated_gradients", "steps", 0), ("integrated_gradients", "steps", 2.5),
           ("integrated_gradients", "baseline", "grey"), ("smoothgrad", "noise_fraction", -0.1),
           ("smoothgrad", "magnitude", 1), ("occlusion", "patch", 29), ("occlusion", "fill", "blue"),
           ("lime", "keep_probability", 0.0), ("lime", "samples", 1), ("gradcam", "layer", None)]
    for method, option, value in bad:
        with pytest.raises(ConfigError, match=f"{method}: {option}="):
            attribute(network, method, images, **{option: value})
    for targets in ([0, 1], [0, 1, 10], [0, -1, 2], [0.0, 1.0, 2.0]):
        with pytest.raises(ConfigError, match=r"targets must be 3 class indices in \[0, 10\)"):
            attribute(network, "gradient", images, targets)
    with pytest.raises(ConfigError, match="layer='nope' is not a layer"):
        attribute(network, "gradcam", images, layer="nope")


class TinyCNN(nn.Module):
    """Two small convolutions and a linear head: compiles in a moment, has a spatial layer for Grad-CAM."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3), name="conv1")(x))
        x = nn.relu(nn.Conv(6, (3, 3), strides=(2, 2), name="conv2")(x))
        return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))


def tiny_network() -> Network:
    return Network(TinyCNN(), random_variables(TinyCNN(), (16, 16, 3)), (100.0, 110.0, 120.0), (60.0, 60.0, 60.0))


def tiny_images(count: int) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (count, 16, 16, 3)).astype(np.float32)


def test_batches_are_padded_and_give_one_map_per_image_whatever_the_batch_size():
    network, images = tiny_network(), tiny_images(5)
    predicted = np.asarray(network.logits(jnp.asarray(images))).argmax(axis=1)
    for name, options in [("gradient", {}), ("smoothgrad", {"samples": 3}), ("occlusion", {"patch": 6})]:
        in_threes = attribute(network, name, images, None, batch_size=3, **options)  # 3 + 2 padded to 3
        assert in_threes.shape == (5, 16, 16) and in_threes.dtype == np.float32
        whole = attribute(network, name, images, predicted, batch_size=8, **options)  # None: the predicted class
        np.testing.assert_allclose(in_threes, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())


MULTI_DEVICE_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_methods import tiny_images, tiny_network
from imagenet_jax.explain.methods import attribute
import jax
assert jax.device_count() == 4
out = {{name: attribute(tiny_network(), name, tiny_images(5), np.arange(5), batch_size=3, **options).tolist()
        for name, options in {cases!r}}}
print(json.dumps(out))
"""
SHARDED_CASES = [("gradient", {}), ("smoothgrad", {"samples": 3})]


def test_maps_sharded_over_four_host_devices_equal_the_one_device_maps():
    # batch_size=3 on 4 devices: batches of 4, the second padded from 1 image to 4
    script = MULTI_DEVICE_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), cases=SHARDED_CASES)
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    network, images = tiny_network(), tiny_images(5)  # the 1-device maps, while the 4-device process starts
    single = {name: attribute(network, name, images, np.arange(5), batch_size=3, **options)
              for name, options in SHARDED_CASES}
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    sharded = json.loads(stdout.strip().splitlines()[-1])
    for name, _ in SHARDED_CASES:
        np.testing.assert_allclose(np.asarray(sharded[name]), single[name], rtol=1e-5,
                                   atol=1e-6 * np.abs(single[name]).max())
