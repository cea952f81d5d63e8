"""Learning-rate schedules and optimizers built from the config (optax)."""

from __future__ import annotations

import jax
import ml_collections
import optax

SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("sgd", "adamw")


def peak_learning_rate(config: ml_collections.ConfigDict) -> float:
    """config.learning_rate scaled linearly by batch_size / lr_reference_batch_size (if set)."""
    if config.lr_reference_batch_size > 0:
        return config.learning_rate * config.batch_size / config.lr_reference_batch_size
    return config.learning_rate


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    """Linear warmup from 0 for warmup_epochs, then cosine to 0, steps, or constant."""
    peak = peak_learning_rate(config)
    warmup_steps = min(int(config.warmup_epochs * steps_per_epoch), total_steps)
    decay_steps = max(total_steps - warmup_steps, 1)
    if config.schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps)
    elif config.schedule == "step":
        # Boundaries count from the end of warmup; each multiplies the rate by lr_step_factor.
        boundaries = {int(epoch * steps_per_epoch) - warmup_steps: config.lr_step_factor
                      for epoch in config.lr_step_epochs}
        decay = optax.piecewise_constant_schedule(peak, {k: v for k, v in boundaries.items() if k > 0})
    else:
        decay = optax.constant_schedule(peak)
    if warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, peak, warmup_steps)
    return optax.join_schedules([warmup, decay], [warmup_steps])


def _decay_mask(params):
    # Kernels (rank >= 2) are decayed; BN scales/offsets and biases (rank 1) are not ("Bag of Tricks").
    return jax.tree.map(lambda p: p.ndim > 1, params)


def create_optimizer(config: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with (Nesterov) momentum and L2 weight decay, or AdamW with decoupled decay."""
    mask = None if config.decay_bn_and_bias else _decay_mask
    if config.optimizer == "sgd":
        # L2 added to the gradient before momentum, as in PyTorch's SGD(weight_decay=...).
        return optax.chain(
            optax.add_decayed_weights(config.weight_decay, mask=mask),
            optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov),
        )
    return optax.adamw(schedule, b1=config.momentum, b2=config.adam_b2, weight_decay=config.weight_decay, mask=mask)
