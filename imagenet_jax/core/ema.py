"""Exponential moving average of the weights (`config.ema_decay`), kept in the train state and evaluated beside them.

After every train step: ema <- d * ema + (1 - d) * new, for the parameters AND the BatchNorm statistics (as
timm's ModelEmaV2 averages the whole state dict): the averaged weights see activations unlike the raw
weights' running statistics, and averaging the statistics too keeps them consistent at no extra compute
(re-estimating them per evaluation would cost a pass over training data). The average starts at the initial
(or `init_from`) weights. `d` is per train step: with grad_accumulation_steps=k the weights change once every k
steps, which makes it d**k per optimizer update. With `config.ema_warmup`, d_t = min(d, (1 + t) / (10 + t))
at step t (TensorFlow's ExponentialMovingAverage `num_updates` rule), so the average forgets the random
initialization quickly in short runs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

SPLIT_SUFFIX = "_ema"  # eval set "test" is logged again as "test_ema", scored with the averaged weights


def init(params: Any, batch_stats: Any) -> dict:
    """The average at step 0: a copy of the weights and BatchNorm statistics."""
    return jax.tree.map(jnp.array, {"params": params, "batch_stats": batch_stats})


def decay_at(step: jax.Array, decay: float, warmup: bool) -> jax.Array:
    """The decay applied after train step `step` (0-based): `decay`, or min(decay, (1 + step) / (10 + step))."""
    decay = jnp.asarray(decay, jnp.float32)
    if not warmup:
        return decay
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update(ema: dict, params: Any, batch_stats: Any, decay: jax.Array) -> dict:
    """decay * ema + (1 - decay) * (params, batch_stats), leaf by leaf in each leaf's dtype."""
    new = {"params": params, "batch_stats": batch_stats}
    return jax.tree.map(lambda old, value: (decay * old + (1.0 - decay) * value).astype(old.dtype), ema, new)


def with_ema_weights(state: Any) -> Any:
    """The train state with its averaged parameters and statistics in place of the raw ones (for evaluation)."""
    return state.replace(params=state.ema["params"], batch_stats=state.ema["batch_stats"])
