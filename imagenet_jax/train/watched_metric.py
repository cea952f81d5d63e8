"""What early stopping, reduce-on-plateau and best-checkpoint tracking share: a logged eval metric to watch.

A watched metric is "<split>/<key>" as logged in metrics.jsonl ("test/top1", "minival/loss", "test_ema/top1");
mode "auto" minimizes keys naming a loss or an error and maximizes the others.
"""

from __future__ import annotations

import math
import numbers

import ml_collections

from imagenet_jax.errors import ConfigError

MODES = ("auto", "max", "min")


def resolve_mode(metric: str, mode: str) -> str:
    """"max" or "min"; "auto" minimizes keys containing "loss" or "error" and maximizes the others."""
    if mode != "auto":
        return mode
    key = metric.rpartition("/")[2].lower()
    return "min" if "loss" in key or "error" in key else "max"


def check_fields(settings: object, key: str, fields: tuple[str, ...]) -> None:
    """ConfigError unless config.<key> is a ConfigDict with exactly `fields`."""
    if not isinstance(settings, ml_collections.ConfigDict) or set(settings.keys()) != set(fields):
        found = sorted(settings.keys()) if isinstance(settings, ml_collections.ConfigDict) else repr(settings)
        raise ConfigError(f"config.{key} must have exactly the fields {', '.join(fields)} (found {found}).")


def check_watch(settings: ml_collections.ConfigDict, key: str, *, bare_key_allowed: bool) -> None:
    """ConfigError naming config.<key>.metric/.mode/.min_delta when one is malformed."""
    metric = settings.metric
    if not isinstance(metric, str):
        raise ConfigError(f"config.{key}.metric={metric!r} must be a string (\"\" turns it off).")
    split, _, name = metric.rpartition("/")
    if metric and (not name or (not split and (not bare_key_allowed or "/" in metric))):
        bare = " or \"<key>\" of the main eval set" if bare_key_allowed else ""
        raise ConfigError(f"config.{key}.metric={metric!r} must be \"<split>/<key>\" as logged in metrics.jsonl "
                          f"(e.g. \"test/top1\" or \"minival/loss\"){bare}.")
    if settings.mode not in MODES:
        raise ConfigError(f"config.{key}.mode={settings.mode!r} is not one of: {', '.join(MODES)}.")
    delta = settings.min_delta
    if not is_real(delta) or not math.isfinite(delta) or delta < 0:
        raise ConfigError(f"config.{key}.min_delta={delta!r} must be a finite number >= 0.")


def is_real(value: object) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
