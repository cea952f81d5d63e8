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


def check_split(key: str, metric: str, splits: list[str]) -> None:
    """ConfigError up front when config.<key>.metric's split is not among the evaluated `splits`."""
    split = metric.rpartition("/")[0]
    if split not in splits:
        raise ConfigError(f"config.{key}.metric={metric!r}: this run logs no eval split {split!r}; its eval splits "
                          f"are {', '.join(splits)} (metric \"<split>/<key>\", e.g. \"{splits[0]}/top1\").")


def read(key: str, metric: str, logged: dict[str, dict]) -> float:
    """The value of `metric` in one evaluation's `{split: metrics}`; ConfigError listing the logged ones if absent."""
    split, _, name = metric.rpartition("/")
    if name not in logged.get(split, {}):
        names = [f"{split_name}/{metric_name}" for split_name, metrics in logged.items() for metric_name in metrics]
        raise ConfigError(f"config.{key}.metric={metric!r} is not logged by this run; the eval metrics are: "
                          f"{', '.join(names)}.")
    return float(logged[split][name])


def improves(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether `value` beats `best` by more than `min_delta` in `mode` ("max"/"min"); the first finite one does."""
    if best is None or math.isnan(best):
        return math.isfinite(value)
    return value > best + min_delta if mode == "max" else value < best - min_delta
