"""Every ResNet ablation variant trains: each parameter gets a gradient, and the loss falls on real images.

Each variant at reduced depth and width (one block in each of two stages, widths 8 and 16; the first block has an
identity shortcut, the second a strided projection) on 28 px Fashion-MNIST, so compilation stays cheap; the
blocks, stems and shortcuts are those of the full-size models. Ablation axes are combined where they are
independent (v1 with ghost BN; ResNet-C with ResNet-D, as "Bag of Tricks" does), which keeps the compiles few.
"""

from __future__ import annotations

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.config.recipes import modern_resnet
from imagenet_jax.models.resnet import BottleneckBlock, ResNet, ResNetBlock
from tests.conftest import FASHION_MNIST_IDX_DIR

# Compilation dominates these tests; unoptimized XLA code is plenty fast for 30 steps of a tiny network.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
NUM_CLASSES, BATCH, STEPS = 10, 8, 30
# id: (block, options). Every axis of the ResNet ablations appears, zero_init_last_bn both on and off.
VARIANTS = {
    "v1.5_bottleneck": (BottleneckBlock, {"zero_init_last_bn": False}),
    "v1.5_bottleneck_zero_init": (BottleneckBlock, {"zero_init_last_bn": True}),
    "v1_ghost_bn_zero_init": (BottleneckBlock, {"version": "v1", "bn_group_size": 4, "zero_init_last_bn": True}),
    "v2_bottleneck_zero_init": (BottleneckBlock, {"version": "v2", "zero_init_last_bn": True}),
    "v2_basic": (ResNetBlock, {"version": "v2", "zero_init_last_bn": False}),
    "C_stem_D_shortcut_basic_zero_init": (ResNetBlock, {"stem": "deep", "shortcut": "avgpool",
                                                        "zero_init_last_bn": True}),
    "plain_basic": (ResNetBlock, {"residual": False, "zero_init_last_bn": False}),
}


def fashion_mnist_batch() -> tuple[np.ndarray, np.ndarray]:
    """The first test image of each of classes 0..BATCH-1: [BATCH, 28, 28, 1] uint8 and their labels."""
    with gzip.open(os.path.join(FASHION_MNIST_IDX_DIR, "t10k-labels-idx1-ubyte.gz")) as stream:
        labels = np.frombuffer(stream.read(8 + 100), np.uint8)[8:]
    with gzip.open(os.path.join(FASHION_MNIST_IDX_DIR, "t10k-images-idx3-ubyte.gz")) as stream:
        images = np.frombuffer(stream.read(16 + 100 * 28 * 28), np.uint8)[16:].reshape(100, 28, 28, 1)
    first = [int(np.flatnonzero(labels == label)[0]) for label in range(BATCH)]
    return images[first], labels[first]


def small_resnet(block, **options) -> ResNet:
    """The variant with one block per stage; the stem's width makes the first block's shortcut the identity."""
    return ResNet(stage_sizes=(1, 1), block_cls=block, stage_widths=(8, 16), stem_width=8 * block.expansion,
                  num_classes=NUM_CLASSES, **options)


def train(model: ResNet) -> tuple[dict, list[dict], list[float]]:
    """(initial params, gradients of the first two steps, losses of STEPS SGD steps) on the fixed batch."""
    images, labels = fashion_mnist_batch()
    images = jnp.asarray((images / 255.0 - 0.286) / 0.353, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)
    optimizer = optax.sgd(0.05, momentum=0.9)

    def init():
        variables = model.init(jax.random.key(0), images, train=False)
        return variables["params"], variables["batch_stats"], optimizer.init(variables["params"])

    def step(params, batch_stats, opt_state):
        def loss_fn(params):
            logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images, train=True,
                                          mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss, grads

    params, batch_stats, opt_state = jax.jit(init).lower().compile(compiler_options=FAST_COMPILE)()
    initial = params
    compiled = jax.jit(step).lower(params, batch_stats, opt_state).compile(compiler_options=FAST_COMPILE)
    gradients, losses = [], []
    for index in range(STEPS + 1):
        params, batch_stats, opt_state, loss, grads = compiled(params, batch_stats, opt_state)
        losses.append(float(loss))
        if index < 2:
            gradients.append(grads)
    return initial, gradients, losses


def zero_leaves(tree: dict) -> list[str]:
    """Paths of the leaves that are exactly zero everywhere."""
    return [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
            if not np.any(np.asarray(leaf))]


def zero_initialized(params: dict) -> list[str]:
    """Block-ending BatchNorm scales and convolution kernels that start at zero (biases start at zero anyway)."""
    return [path for path in zero_leaves(params) if path.endswith("['scale']") or path.endswith("['kernel']")]


# ~6 s of compiling each: the zero-init cases run by default, the rest with the slow tests.
DEFAULT_VARIANTS = ("v1.5_bottleneck_zero_init", "v2_bottleneck_zero_init")


@pytest.mark.parametrize(
    "variant", [name if name in DEFAULT_VARIANTS else pytest.param(name, marks=pytest.mark.slow) for name in VARIANTS])
def test_every_parameter_gets_a_gradient_and_the_loss_falls(variant):
    block, options = VARIANTS[variant]
    model = small_resnet(block, **options)
    initial, gradients, losses = train(model)

    starts_as_identity = model.zero_init_last_bn and model.residual
    # Zero-init zeroes exactly one leaf per residual block, and never touches a plain network.
    assert len(zero_initialized(initial)) == (sum(model.stage_sizes) if starts_as_identity else 0)
    # Behind a zeroed block ending only the block's own layers are cut off at init; one step later they learn too.
    gradient = gradients[1] if starts_as_identity else gradients[0]
    assert zero_leaves(gradient) == [], "parameters without a gradient"
    assert all(np.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def test_plain_network_of_the_modern_recipe_trains():
    config = modern_resnet("resnet50", residual=False)
    assert config.model_options.zero_init_last_bn  # the recipe keeps it on for the residual networks
    # The recipe's ablation axes at a small width (its other options, e.g. stem_width, size the full ResNet-50).
    axes = ("version", "stem", "shortcut", "residual", "zero_init_last_bn")
    model = small_resnet(BottleneckBlock, **{key: config.model_options[key] for key in axes})
    initial, gradients, losses = train(model)
    assert zero_initialized(initial) == [], "a plain block was zero-initialized: it would output zeros"
    assert zero_leaves(gradients[0]) == []
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize(("conv_init", "gain", "fan"), [("he_fan_out", 2.0, "out"), ("he_fan_in", 2.0, "in"),
                                                        ("lecun", 1.0, "in")])
def test_conv_init_draws_kernels_with_the_named_variance(conv_init, gain, fan):
    """Every non-zero-initialized conv kernel has variance gain/fan (torchvision's kaiming fan-out, the paper's
    fan-in, flax's LeCun), to within the sampling error of its size."""
    model = ResNet(stage_sizes=(2, 2), block_cls=ResNetBlock, stage_widths=(64, 128), stem_width=64,
                   num_classes=NUM_CLASSES, conv_init=conv_init)
    params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if "kernel" in jax.tree_util.keystr(path) and leaf.ndim == 4]
    assert len(kernels) == 10  # stem + 2x2 blocks x 2 convs + one projection shortcut
    for kernel in kernels:
        height, width, fan_in, fan_out = kernel.shape
        expected = gain / (height * width * (fan_in if fan == "in" else fan_out))
        # The sample variance of n normal draws has relative standard error sqrt(2/n); allow 5 of them.
        assert abs(float(jnp.var(kernel)) / expected - 1) < 5 * np.sqrt(2 / kernel.size), kernel.shape


def test_unknown_conv_init_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="conv_init='xavier' is not one of he_fan_out, he_fan_in, lecun"):
        ResNet(stage_sizes=(1,), block_cls=ResNetBlock, conv_init="xavier")


def test_cifar_resnet_starts_from_the_papers_init_and_the_default_model_from_flax_default():
    from imagenet_jax import models

    assert models.default_options("resnet20")["conv_init"] == "he_fan_in"
    assert models.default_options("resnet50")["conv_init"] == "he_fan_out"
    assert models.default_options("resnet_small")["conv_init"] == "lecun"
