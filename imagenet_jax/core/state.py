"""The training state: one pytree holding everything a resumed run needs besides the config."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from imagenet_jax.core import ema


@flax.struct.dataclass
class TrainState:
    """Step, parameters, BatchNorm statistics, optimizer state and the EMA; the RNG derives from (seed, step)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    ema: Any = None  # {"params", "batch_stats"} averaged (train/ema.py) when config.ema_decay > 0


def create_train_state(
    model: nn.Module, optimizer: optax.GradientTransformation, rng: jax.Array, input_shape: tuple[int, ...],
    with_ema: bool = False,
) -> TrainState:
    """Initializes parameters, BN statistics (empty dict for BN-free models), optimizer state and the EMA."""
    variables = model.init({"params": rng, "dropout": rng}, jnp.zeros((1, *input_shape), jnp.float32), train=False)
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=optimizer.init(params),
        ema=ema.init(params, batch_stats) if with_ema else None,
    )
