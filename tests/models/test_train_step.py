"""Every registered model trains: the loss gradient (with BatchNorm statistics updated) compiles and is finite."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax import models
from imagenet_jax.models import accounting

# Cheaper XLA:CPU compilation; these tests check that the step builds and runs, not its speed.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# Minutes in total on two cores; `-m "not slow"` skips them.
HEAVY = {"resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d", "convnext_small", "convnext_base",
         "convnext_large", "densenet121", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_large"} | {
    name for name in models.names() if name.startswith("vgg") and name not in ("vgg11_bn", "vgg_a_lrn")
}
NUM_CLASSES = 10
BATCH = 2


def synthetic_variables(model, image_size: int, seed: int = 0) -> dict:
    """Random variables of the right shapes without compiling `model.init` (its RNG code is slow to compile)."""
    shapes = accounting.abstract_variables(model, image_size, BATCH)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        leaf_name = path[-1].key
        if leaf_name in ("bias", "mean"):
            return np.zeros(leaf.shape, np.float32)
        if leaf_name in ("scale", "var"):
            return np.ones(leaf.shape, np.float32)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def train_step_outputs(model, variables: dict, images: jax.Array, labels: jax.Array):
    """Gradient of the (auxiliary-weighted) cross-entropy, the new BatchNorm statistics, and the loss."""
    others = {key: value for key, value in variables.items() if key != "params"}

    def loss_fn(params):
        outputs, updates = model.apply(
            {"params": params, **others},
            images,
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": jax.random.key(1)},
        )
        logits, auxiliary = models.split_outputs(outputs)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        for aux_logits in auxiliary:
            loss += 0.3 * optax.softmax_cross_entropy_with_integer_labels(aux_logits, labels).mean()
        return loss, (updates, logits, auxiliary)

    step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    compiled = step.lower(variables["params"]).compile(compiler_options=FAST_COMPILE)
    return compiled(variables["params"])


def check_train_step(name: str, image_size: int, **options) -> None:
    model = models.create(name, num_classes=NUM_CLASSES, **options)
    variables = synthetic_variables(model, image_size)
    images = jax.random.normal(jax.random.key(0), (BATCH, image_size, image_size, 3))
    labels = jnp.arange(BATCH) % NUM_CLASSES
    (loss, (updates, logits, auxiliary)), grads = train_step_outputs(model, variables, images, labels)

    assert np.isfinite(float(loss))
    assert logits.shape == (BATCH, NUM_CLASSES) and logits.dtype == jnp.float32
    for aux_logits in auxiliary:
        assert aux_logits.shape == (BATCH, NUM_CLASSES)
    assert jax.tree.structure(grads) == jax.tree.structure(variables["params"])
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    if "batch_stats" in variables:
        new_stats = updates["batch_stats"]
        assert jax.tree.structure(new_stats) == jax.tree.structure(variables["batch_stats"])
        moved = [
            not np.allclose(new, old)
            for new, old in zip(jax.tree.leaves(new_stats), jax.tree.leaves(variables["batch_stats"]), strict=True)
        ]
        assert any(moved), "BatchNorm running statistics were not updated"
    else:
        assert "batch_stats" not in updates or not updates["batch_stats"]


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in models.names()]
)
def test_train_step_compiles_and_runs(name):
    image_size = models.min_image_size(name)  # the smallest each accepts (AlexNet 63 px, Inception-v3 75 px)
    options = {"aux_logits": False} if name == "inception_v3" else {}
    check_train_step(name, image_size, **options)


def test_googlenet_auxiliary_heads_train():
    check_train_step("googlenet", 32, aux_logits=True)


@pytest.mark.slow
def test_inception_v3_auxiliary_head_trains_at_299px():
    check_train_step("inception_v3", 299, aux_logits=True)
