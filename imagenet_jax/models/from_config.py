"""The one place a run's model is built from its config (training, `evaluate`, `runs.Run` alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from imagenet_jax.models.registry import create


def model_from_config(config: Mapping[str, Any], num_classes: int) -> nn.Module:
    """config.model with its config.model_options, in the config's precision and ghost-BatchNorm group size."""
    dtype = jnp.bfloat16 if config.get("half_precision") else jnp.float32
    ghost_bn = {"bn_group_size": config["bn_group_size"]} if config.get("bn_group_size") else {}
    options = config["model_options"]
    options = options.to_dict() if hasattr(options, "to_dict") else dict(options)
    return create(config["model"], num_classes=num_classes, dtype=dtype, **ghost_bn, **options)
