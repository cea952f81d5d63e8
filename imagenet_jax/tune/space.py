"""Search spaces: a config file (configs/search/NAME.py) whose get_space() maps config keys to distributions.

    def get_space():
        return {
            "learning_rate": {"distribution": "log_uniform", "low": 0.02, "high": 0.5},
            "label_smoothing": {"distribution": "uniform", "low": 0.0, "high": 0.2, "grid": (0.0, 0.1)},
            "schedule.warmup_epochs": {"distribution": "int", "low": 0, "high": 2},
            "optimizer.name": {"distribution": "categorical", "choices": ("sgd", "adamw")},
        }

Distributions: uniform and log_uniform (low, high), int (low, high, step 1, log False), categorical (choices).
`grid` lists the values the grid sampler tries (categorical: its choices by default). Every key must be a key
of the base config (dotted for nested ones) and every option is checked before any trial runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ml_collections

from imagenet_jax.errors import ConfigError

DISTRIBUTIONS = {  # name: (required options, optional options with defaults)
    "uniform": (("low", "high"), {"grid": ()}),
    "log_uniform": (("low", "high"), {"grid": ()}),
    "int": (("low", "high"), {"step": 1, "log": False, "grid": ()}),
    "categorical": (("choices",), {"grid": ()}),
}


def load_space(path: str, config: ml_collections.ConfigDict) -> dict[str, dict]:
    """The validated space of the file at `path` for `config` (each entry with its defaults filled in)."""
    import importlib.util
    import os

    if not os.path.isfile(path):
        raise ConfigError(f"--space {path}: no such file (a search space is configs/search/NAME.py with get_space()).")
    spec = importlib.util.spec_from_file_location("search_space", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_space"):
        raise ConfigError(f"--space {path}: defines no get_space() returning {{config key: distribution}}.")
    return validate(dict(module.get_space()), config)


def validate(space: Mapping[str, Any], config: ml_collections.ConfigDict) -> dict[str, dict]:
    """ConfigError naming space.<key>[.<option>] for an unknown key, distribution, option or bad value."""
    if not space:
        raise ConfigError("the search space is empty: map at least one config key to a distribution.")
    checked = {}
    for key, entry in space.items():
        where = f"space.{key}"
        _config_value(config, key, where)
        if not isinstance(entry, Mapping) or entry.get("distribution") not in DISTRIBUTIONS:
            raise ConfigError(f"{where} must be a dict with a \"distribution\" (one of: {', '.join(DISTRIBUTIONS)}).")
        required, optional = DISTRIBUTIONS[entry["distribution"]]
        options = {key: value for key, value in entry.items() if key != "distribution"}
        unknown = sorted(set(options) - set(required) - set(optional))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not an option of {entry['distribution']} (its options: "
                              f"{', '.join([*required, *optional])}).")
        missing = [name for name in required if name not in options]
        if missing:
            raise ConfigError(f"{where}.{missing[0]} is required for {entry['distribution']}.")
        checked[key] = {"distribution": entry["distribution"], **optional, **options}
        _check_values(checked[key], where)
    return checked


def _config_value(config: ml_collections.ConfigDict, key: str, where: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
            raise ConfigError(f"{where}: {key!r} is not a key of the config (use the dotted path of a nested key, "
                              "e.g. schedule.warmup_epochs).")
        node = node[part]
    return node


def _check_values(entry: dict, where: str) -> None:
    kind = entry["distribution"]
    if kind == "categorical":
        if isinstance(entry["choices"], (str, bytes)) or not entry["choices"]:
            raise ConfigError(f"{where}.choices must be a non-empty list of values.")
        return
    low, high = entry["low"], entry["high"]
    numbers = (int,) if kind == "int" else (int, float)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        raise ConfigError(f"{where}: low and high must be {'integers' if kind == 'int' else 'finite numbers'}.")
    if not low < high:
        raise ConfigError(f"{where}: low={low} must be below high={high}.")
    if (kind == "log_uniform" or entry.get("log")) and low <= 0:
        raise ConfigError(f"{where}.low={low} must be > 0 for a log scale.")
    if any(not low <= value <= high for value in entry["grid"]):
        raise ConfigError(f"{where}.grid={tuple(entry['grid'])} must lie within [{low}, {high}].")


def grid(space: Mapping[str, dict]) -> dict[str, list]:
    """{key: values} the grid sampler tries: each entry's `grid`, categorical choices, or an int's range."""
    out = {}
    for key, entry in space.items():
        values = list(entry["grid"])
        if not values and entry["distribution"] == "categorical":
            values = list(entry["choices"])
        if not values and entry["distribution"] == "int" and not entry["log"]:
            values = list(range(entry["low"], entry["high"] + 1, entry["step"]))
        if not values:
            raise ConfigError(f"space.{key}.grid: the grid sampler needs the values to try for a continuous "
                              "distribution (e.g. \"grid\": (0.05, 0.1, 0.2)).")
        out[key] = values
    return out


def suggest(trial, space: Mapping[str, dict]) -> dict[str, Any]:
    """{config key: value} drawn for an Optuna trial (recorded in the study as the trial's params)."""
    values = {}
    for key, entry in space.items():
        kind = entry["distribution"]
        if kind == "categorical":
            values[key] = trial.suggest_categorical(key, list(entry["choices"]))
        elif kind == "int":
            values[key] = trial.suggest_int(key, entry["low"], entry["high"], step=entry["step"], log=entry["log"])
        else:
            values[key] = trial.suggest_float(key, entry["low"], entry["high"], log=kind == "log_uniform")
    return values


def overrides(values: Mapping[str, Any]) -> list[str]:
    """The --config.KEY=VALUE arguments that set `values` on a training command line."""
    return [f"--config.{key}={_literal(value)}" for key, value in values.items()]


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)  # absl parses a string field's text as it is
