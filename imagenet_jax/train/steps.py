"""Pure train and eval steps; the loop jit-compiles them with explicit shardings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from imagenet_jax.train import mixing
from imagenet_jax.train.state import TrainState

_MIXING_STREAM = 0x6D6978  # folded into the step key: mixing draws never collide with dropout's


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
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    mix_prob: float = 1.0,
    mix_switch_prob: float = 0.5,
) -> Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]:
    """Returns train_step(state, batch, base_key) -> (new_state, metrics); metrics["finite"] flags NaN/Inf.

    With skip_nonfinite, a step whose loss or gradients are not finite leaves the state unchanged but
    for the step counter, so one bad batch cannot poison the weights. With mixup/cutmix (mixing.py) the
    loss is cross-entropy against the mixed soft targets. A batch "mask" (False: an unreadable image's
    stand-in) keeps those examples out of the loss and the metrics.
    """
    mixes = mixing.mixing_enabled(mixup_alpha, cutmix_alpha, mix_prob)

    def train_step(state: TrainState, batch: dict, base_key: jax.Array):
        step_key = jax.random.fold_in(base_key, state.step)  # RNG is a function of (seed, step): resumable.
        images = normalize_images(batch["image"], mean, std)
        labels = batch["label"]
        weights = batch["mask"].astype(jnp.float32) if "mask" in batch else None

        def average(per_example: jax.Array) -> jax.Array:
            if weights is None:
                return jnp.mean(per_example)
            return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)

        if mixes:
            targets = jax.nn.one_hot(labels, num_classes)
            targets = optax.smooth_labels(targets, label_smoothing) if label_smoothing else targets
            images, targets, _ = mixing.mix_batch(
                jax.random.fold_in(step_key, _MIXING_STREAM), images, targets, mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha, prob=mix_prob, switch_prob=mix_switch_prob)

        def loss_of(logits: jax.Array) -> jax.Array:
            if mixes:
                return average(optax.softmax_cross_entropy(logits.astype(jnp.float32), targets))
            return average(cross_entropy(logits, labels, num_classes, label_smoothing))

        def loss_fn(params):
            outputs, updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": step_key},
            )
            logits, aux_logits = _split_outputs(outputs)
            loss = loss_of(logits)
            for aux in aux_logits:
                loss += aux_loss_weight * loss_of(aux)
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
            "top1": average(topk_correct(logits, labels, 1)),
            "top5": average(topk_correct(logits, labels, 5)),
            "learning_rate": schedule(state.step),
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step


def make_eval_step(
    model: nn.Module, *, num_classes: int, mean: Sequence[float], std: Sequence[float],
    class_subset: Sequence[int] | None = None,
) -> Callable[[TrainState, dict], dict]:
    """Returns eval_step(state, batch) -> sums of loss/top1/top5 over real (mask=True) examples and their count.

    `class_subset` scores only those model classes (labels then index into the subset: ImageNet-R/-A). A batch
    "label_set" [N, K] (-1 padded) counts a top-k prediction as correct when it is any of the set (ImageNet-ReaL);
    examples with an empty set are not scored. A batch "skipped" flag (unreadable images) is summed.
    """
    subset = None if class_subset is None else jnp.asarray(class_subset, jnp.int32)

    def eval_step(state: TrainState, batch: dict) -> dict:
        images = normalize_images(batch["image"], mean, std)
        outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats}, images, train=False)
        logits, _ = _split_outputs(outputs)
        classes = num_classes
        if subset is not None:
            logits, classes = jnp.take(logits, subset, axis=-1), subset.shape[0]
        mask = batch["mask"]
        if "label_set" in batch:
            mask = mask & jnp.any(batch["label_set"] >= 0, axis=-1)
        weights = mask.astype(jnp.float32)
        sums = {
            "loss": jnp.sum(cross_entropy(logits, batch["label"], classes) * weights),
            "top1": jnp.sum(_correct(logits, batch, 1) * weights),
            "top5": jnp.sum(_correct(logits, batch, 5) * weights),
            "num_examples": jnp.sum(mask.astype(jnp.int32)),
        }
        if "label_set" in batch:
            sums["num_unlabeled"] = jnp.sum((batch["mask"] & ~mask).astype(jnp.int32))
        if "skipped" in batch:
            sums["num_skipped"] = jnp.sum(batch["skipped"].astype(jnp.int32))
        return sums

    return eval_step


def _correct(logits: jax.Array, batch: dict, k: int) -> jax.Array:
    if "label_set" not in batch:
        return topk_correct(logits, batch["label"], k)
    _, top = jax.lax.top_k(logits, min(k, logits.shape[-1]))
    hits = (top[:, :, None] == batch["label_set"][:, None, :]) & (batch["label_set"][:, None, :] >= 0)
    return jnp.any(hits, axis=(1, 2)).astype(jnp.float32)
