"""The training state: one pytree holding everything a resumed run needs besides the config."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Step, parameters, BatchNorm statistics and optimizer state; the RNG derives from (seed, step)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def create_train_state(
    model: nn.Module, optimizer: optax.GradientTransformation, rng: jax.Array, input_shape: tuple[int, ...]
) -> TrainState:
    """Initializes parameters, BN statistics (empty dict for BN-free models) and optimizer state."""
    variables = model.init({"params": rng, "dropout": rng}, jnp.zeros((1, *input_shape), jnp.float32), train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=optimizer.init(params),
    )
