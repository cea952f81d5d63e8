"""Configs built in Python: a config file plus overrides ("key=value" strings or a dict), checked like the CLI's.

    config = imagenet_jax.config.get("configs/default.py", {"num_epochs": 1.0, "schedule.warmup_epochs": 0})
    config = imagenet_jax.config.get("configs/papers/vgg_table3.py:vgg_a", ["batch_size=64"])

A "key=value" string is parsed by the type of the key's current value (as `--config.key=value` is); every
key and value is then checked by `validate_config`, so a mistake gives the CLI's one-line message.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.errors import ConfigError

Overrides = Mapping[str, Any] | Iterable[str] | None
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def get(config_file: str, overrides: Overrides = None, validate: bool = True) -> ml_collections.ConfigDict:
    """The config of `config_file` ("path.py" or "path.py:variant") with `overrides` applied, validated."""
    config = load_config_file(config_file)
    config = apply_overrides(config, overrides)
    if validate:
        # Imported here: experiment.validate imports this package (config.base), so importing it at the top made
        # `import imagenet_jax.experiment.validate` fail when it was the first of the two to be imported.
        from imagenet_jax.experiment.validate import validate_config

        validate_config(config)
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: Overrides) -> ml_collections.ConfigDict:
    """A copy of `config` with each override set; dotted keys reach nested ConfigDicts ("schedule.name")."""
    config = ml_collections.ConfigDict(config.to_dict())  # unlocked copy: the caller's config is untouched
    for key, value in _pairs(overrides):
        _set(config, key, value)
    return config


def _pairs(overrides: Overrides) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, str):
        overrides = [overrides]
    pairs = []
    for item in overrides:
        key, has_value, text = item.removeprefix("--").removeprefix("config.").partition("=")
        if not has_value or not key:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. \"num_epochs=2\").")
        pairs.append((key.strip(), _Text(text)))
    return pairs


class _Text(str):
    """A value given as text ("key=value"): parsed by the type of the value it replaces."""


def _set(config: ml_collections.ConfigDict, dotted_key: str, value: Any) -> None:
    *parents, name = dotted_key.removeprefix("config.").split(".")
    node = config
    for depth, parent in enumerate(parents):
        if parent not in node or not isinstance(node[parent], ml_collections.ConfigDict):
            raise ConfigError(f"unknown config key config.{'.'.join(parents[:depth + 1])} (in override "
                              f"{dotted_key!r}). Every key is listed in imagenet_jax/config/base.py.")
        node = node[parent]
    current = node[name] if name in node else None
    if isinstance(value, _Text):
        value = _parse(str(value), current, dotted_key)
    elif isinstance(value, Mapping):
        value = ml_collections.ConfigDict(dict(value))
    try:
        node[name] = value  # an unknown top-level key is named by validate_config, with a near match
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config.{dotted_key}={value!r}: {error}") from None


def _parse(text: str, current: Any, key: str) -> Any:
    """`text` as the type of `current` (a Python literal where the key is new or was None)."""
    try:
        if isinstance(current, bool):
            if text.strip().lower() not in _TRUE + _FALSE:
                raise ValueError("expected True or False")
            return text.strip().lower() in _TRUE
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, str):
            return text
        if isinstance(current, (tuple, list)):
            parsed = ast.literal_eval(text) if text.strip() else ()
            parsed = parsed if isinstance(parsed, (tuple, list)) else (parsed,)
            return type(current)(parsed)
        if isinstance(current, ml_collections.ConfigDict):
            return ml_collections.ConfigDict(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError) as error:
        kind = type(current).__name__
        raise ConfigError(f"config.{key}={text!r} is not a valid {kind} ({error}).") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a new string-valued key (e.g. a model option)
