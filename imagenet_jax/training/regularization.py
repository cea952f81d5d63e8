"""Validation of the regularization keys: loss and EMA (early stopping is the loop's: early_stopping.py).

Dropout and stochastic-depth rates are model options, checked by the models themselves (models/dropout.py).
"""

from __future__ import annotations

import math
import numbers

import ml_collections

from imagenet_jax.core.losses import LOSSES
from imagenet_jax.errors import ConfigError


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the key for a bad loss, EMA or early-stopping setting."""
    LOSSES.get(config.loss)  # config.loss='focal' is not a registered loss. ...
    _unit_interval(config.bce_target_threshold, "config.bce_target_threshold")
    LOSSES.check(config.loss, {"bce_target_threshold": config.bce_target_threshold})  # the loss's own options
    _unit_interval(config.ema_decay, "config.ema_decay")
    if not isinstance(config.ema_warmup, bool):
        raise ConfigError(f"config.ema_warmup={config.ema_warmup!r} must be True or False.")


def _unit_interval(value, name: str) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0 <= value < 1:
        raise ConfigError(f"{name}={value!r} must be a number in [0, 1).")
