"""Pure train and eval steps; the loop jit-compiles them with explicit shardings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from imagenet_jax.core import ema as ema_lib
from imagenet_jax.core import losses
from imagenet_jax.core.metrics import normalize_images, topk_correct
from imagenet_jax.core.state import TrainState
from imagenet_jax.models.outputs import auxiliary_loss_weight, split_outputs
from imagenet_jax.training import mixing
from imagenet_jax.training.adversarial_training import AdversarialTraining
from imagenet_jax.training.distill import Distill, distillation_loss
from imagenet_jax.training.optim.plateau import lr_multiplier
from imagenet_jax.training.transfer import Freeze

_MIXING_STREAM = 0x6D6978  # folded into the step key: mixing draws never collide with dropout's
_ATTACK_STREAM = 0x61646B  # the adversarial random start's draws, likewise


def make_train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    *,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    label_smoothing: float,
    skip_nonfinite: bool = False,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    mix_prob: float = 1.0,
    mix_switch_prob: float = 0.5,
    loss_name: str = "softmax_xent",
    bce_target_threshold: float = 0.0,
    ema_decay: float = 0.0,
    ema_warmup: bool = False,
    freeze: Freeze | None = None,
    distill: Distill | None = None,
    adversarial: AdversarialTraining | None = None,
) -> Callable[..., tuple[TrainState, dict]]:
    """Returns train_step(state, batch, base_key[, teacher]) -> (new_state, metrics); metrics["finite"] flags NaN/Inf.

    Auxiliary classifiers' losses (GoogLeNet, Inception-v3) are weighted by the model's own `aux_loss_weight`.
    With skip_nonfinite, a step whose loss or gradients are not finite keeps the parameters, BatchNorm
    statistics and optimizer moments, but advances every counter (see `skip_update`), so one bad batch cannot
    poison the weights and the schedule stays in step. With mixup/cutmix (mixing.py) the loss is cross-entropy
    against the mixed soft targets. A batch "mask" (False: an unreadable image's stand-in) keeps those examples
    out of the loss, the metrics and the mixing. `loss_name` picks the loss (losses.py); with ema_decay > 0 the
    state's EMA of the weights (ema.py) is updated after the optimizer. `freeze` (transfer.py) keeps frozen
    parameters bit-equal and their BatchNorm layers in inference mode; `distill` (distill.py) adds the KD term
    against the teacher whose variables are the step's 4th argument; `adversarial` (adversarial_training.py)
    trains on attacked images.
    """
    mixes = mixing.mixing_enabled(mixup_alpha, cutmix_alpha, mix_prob)
    per_example_loss = losses.create(loss_name, bce_target_threshold)
    aux_weight = auxiliary_loss_weight(model)

    def train_step(state: TrainState, batch: dict, base_key: jax.Array, teacher: dict | None = None):
        step_key = jax.random.fold_in(base_key, state.step)  # RNG is a function of (seed, step): resumable.
        labels = batch["label"]
        weights = batch["mask"].astype(jnp.float32) if "mask" in batch else None
        frozen_batch_norm = contextlib.nullcontext if freeze is None else (
            lambda: freeze.batch_norm_in_inference(state.params))

        def average(per_example: jax.Array) -> jax.Array:
            if weights is None:
                return jnp.mean(per_example)
            return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)

        if adversarial is None:
            images = normalize_images(batch["image"], mean, std)
        else:
            def attack_loss(pixels: jax.Array, attack_labels: jax.Array) -> jax.Array:
                # Summed, so each example's gradient is its own loss's; BN statistics of these passes discarded.
                with frozen_batch_norm():
                    outputs, _ = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                                             normalize_images(pixels, mean, std), train=True, mutable=["batch_stats"],
                                             rngs={"dropout": step_key})
                logits, _ = split_outputs(outputs)
                per_example = losses.softmax_xent(logits, jax.nn.one_hot(attack_labels, num_classes))
                return jnp.sum(per_example if weights is None else per_example * weights)

            pixels = adversarial.perturb(attack_loss, batch["image"].astype(jnp.float32), labels,
                                         jax.random.fold_in(step_key, _ATTACK_STREAM))
            images = normalize_images(jax.lax.stop_gradient(pixels), mean, std)

        if mixes:
            targets = jax.nn.one_hot(labels, num_classes)
            targets = optax.smooth_labels(targets, label_smoothing) if label_smoothing else targets
            images, targets, _ = mixing.mix_batch(
                jax.random.fold_in(step_key, _MIXING_STREAM), images, targets, mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha, prob=mix_prob, switch_prob=mix_switch_prob, mask=batch.get("mask"))
        teacher_logits = None if distill is None else distill.teacher_logits(teacher, images)  # on the mixed images

        def loss_of(logits: jax.Array, teacher_logits: jax.Array | None = None) -> jax.Array:
            if mixes:
                hard = per_example_loss(logits, targets)
            else:
                hard = per_example_loss(logits, losses.soft_targets(labels, num_classes, label_smoothing))
            if teacher_logits is not None:
                hard = distillation_loss(logits, teacher_logits, hard, temperature=distill.temperature,
                                         alpha=distill.alpha)
            return average(hard)

        def loss_fn(params):
            with frozen_batch_norm():
                outputs, updates = model.apply(
                    {"params": params, "batch_stats": state.batch_stats},
                    images,
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": step_key},
                )
            logits, aux_logits = split_outputs(outputs)
            loss = loss_of(logits, teacher_logits)  # auxiliary classifiers learn from the labels only
            for aux in aux_logits:
                loss += aux_weight * loss_of(aux)
            return loss, (logits, updates.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(
            step=state.step + 1,
            params=params if freeze is None else freeze.keep_frozen(params, state.params),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )
        if ema_decay:
            decay = ema_lib.decay_at(state.step, ema_decay, ema_warmup)
            new_state = new_state.replace(
                ema=ema_lib.update(state.ema, new_state.params, new_state.batch_stats, decay))
        if skip_nonfinite:
            new_state = skip_update(new_state, state, finite)
        metrics = {
            "loss": loss,
            "top1": average(topk_correct(logits, labels, 1)),
            "top5": average(topk_correct(logits, labels, 5)),
            "learning_rate": schedule(state.step) * lr_multiplier(state.opt_state),  # x config.lr_plateau's
            "grad_norm": grad_norm,
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    return train_step


def skip_update(updated: TrainState, previous: TrainState, finite: jax.Array) -> TrainState:
    """`updated` where `finite`; else `previous` with `updated`'s integer leaves (the step and optimizer counters).

    Keeping the counters' new values keeps the optimizer's update count (which drives its learning-rate
    schedule) equal to the train step, as if the skipped step had been a step that changed nothing.
    """

    def keep_unless_counter(new: jax.Array, old: jax.Array) -> jax.Array:
        return new if jnp.issubdtype(new.dtype, jnp.integer) else jnp.where(finite, new, old)

    return jax.tree.map(keep_unless_counter, updated, previous)
