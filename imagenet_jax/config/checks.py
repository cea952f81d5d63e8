"""Checks shared by the validators of each concern (optim, distill, adversarial training, ...): one wording."""

from __future__ import annotations

import numbers

import ml_collections

from imagenet_jax.errors import ConfigError


def is_number(value) -> bool:
    """A real number, not a bool (True is an int to Python, never a rate to us)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_sub_dict(config: ml_collections.ConfigDict, key: str, fields: tuple[str, ...]) -> ml_collections.ConfigDict:
    """config[key], a ConfigDict with exactly `fields`; else a ConfigError naming the key and what was found."""
    value = config[key]
    if not isinstance(value, ml_collections.ConfigDict) or set(value.keys()) != set(fields):
        found = sorted(value.keys()) if isinstance(value, ml_collections.ConfigDict) else repr(value)
        raise ConfigError(f"config.{key} must be a ConfigDict with exactly the fields {', '.join(fields)} "
                          f"(found {found}); see imagenet_jax/config/base.py.")
    return value
