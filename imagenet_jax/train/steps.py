"""Pure train and eval steps; the loop jit-compiles them with explicit shardings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from imagenet_jax.train.state import TrainState


def normalize_images(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """uint8 NHWC -> float32 (x - mean) / std; done on device so the host ships 4x fewer bytes."""
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    return (images.astype(jnp.float32) - mean) / std


def cross_entropy(logits: jax.Array, labels: jax.Array, num_classes: int, label_smoothing: float = 0.0) -> jax.Array:
    """Per-example softmax cross-entropy in float32 with optional label smoothing."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing) if label_smoothing else (
        jax.nn.one_hot(labels, num_classes)
    )
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """Per-example 1.0 where the label is among the k highest logits."""
    k = min(k, logits.shape[-1])
    _, top = jax.lax.top_k(logits, k)
    return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def _split_outputs(outputs: Any) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    # Models with auxiliary classifiers (GoogLeNet, Inception-v3) return (logits, *aux_logits) in training.
    if isinstance(outputs, tuple):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()


def make_train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    *,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    label_smoothing: float,
    aux_loss_weight: float,
    skip_nonfinite: bool = False,
) -> Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]:
    """Returns train_step(state, batch, base_key) -> (new_state, metrics); metrics["finite"] flags NaN/Inf.

    With skip_nonfinite, a step whose loss or gradients are not finite leaves the state unchanged but
    for the step counter, so one bad batch cannot poison the weights.
    """

    def train_step(state: TrainState, batch: dict, base_key: jax.Array):
        step_key = jax.random.fold_in(base_key, state.step)  # RNG is a function of (seed, step): resumable.
        images = normalize_images(batch["image"], mean, std)
        labels = batch["label"]

        def loss_fn(params):
            outputs, updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": step_key},
            )
            logits, aux_logits = _split_outputs(outputs)
            loss = jnp.mean(cross_entropy(logits, labels, num_classes, label_smoothing))
            for aux in aux_logits:
                loss += aux_loss_weight * jnp.mean(cross_entropy(aux, labels, num_classes, label_smoothing))
            return loss, (logits, updates.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        grad_norm = optax.global_norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )
        if skip_nonfinite:
            kept = state.replace(step=state.step + 1)
            new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
        metrics = {
            "loss": loss,
            "top1": jnp.mean(topk_correct(logits, labels, 1)),
            "top5": jnp.mean(topk_correct(logits, labels, 5)),
            "learning_rate": schedule(state.step),
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step


def make_eval_step(
    model: nn.Module, *, num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> Callable[[TrainState, dict], dict]:
    """Returns eval_step(state, batch) -> sums of loss/top1/top5 over real (mask=True) examples and their count."""

    def eval_step(state: TrainState, batch: dict) -> dict:
        images = normalize_images(batch["image"], mean, std)
        outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats}, images, train=False)
        logits, _ = _split_outputs(outputs)
        mask = batch["mask"].astype(jnp.float32)
        return {
            "loss": jnp.sum(cross_entropy(logits, batch["label"], num_classes) * mask),
            "top1": jnp.sum(topk_correct(logits, batch["label"], 1) * mask),
            "top5": jnp.sum(topk_correct(logits, batch["label"], 5) * mask),
            "num_examples": jnp.sum(batch["mask"].astype(jnp.int32)),
        }

    return eval_step
