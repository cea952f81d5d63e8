"""(regex, value) rules over parameter paths such as "head/kernel" or "stage1_block1/BatchNorm_0/scale".

A rule matches when its regex matches the whole path (re.fullmatch); the first matching rule wins, and a
path no rule matches gets the default. Paths are static, so the per-leaf values are Python floats at trace time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax

from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel.mesh import leaf_path

Rules = Sequence[tuple[str, float]]


def check_rules(key: str, rules: Any) -> None:
    """ConfigError naming config.`key` unless `rules` is a sequence of (regex, number >= 0) pairs."""
    if isinstance(rules, str) or not isinstance(rules, (tuple, list)):
        raise ConfigError(f"config.{key}={rules!r} must be a tuple of (regex, multiplier) pairs.")
    for rule in rules:
        if not isinstance(rule, (tuple, list)) or len(rule) != 2 or not isinstance(rule[0], str):
            raise ConfigError(f"config.{key}: {rule!r} must be a (regex, multiplier) pair.")
        pattern, value = rule
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"config.{key}: {pattern!r} is not a regular expression ({error}).") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ConfigError(f"config.{key}: the multiplier of {pattern!r} is {value!r}; it must be a number >= 0.")


def value_for(path: str, rules: Rules, default: float = 1.0) -> float:
    """The value of the first rule whose regex matches all of `path`, else `default`."""
    for pattern, value in rules:
        if re.fullmatch(pattern, path):
            return float(value)
    return default


def per_leaf(rules: Rules, default: float = 1.0, scale: float = 1.0) -> Callable[[Any], Any]:
    """A function mapping a parameter tree to the tree of `scale` x (rule value) per leaf."""

    def values(tree: Any) -> Any:
        return jax.tree_util.tree_map_with_path(lambda path, _: scale * value_for(leaf_path(path), rules, default),
                                                tree)

    return values


def matches(pattern: str) -> Callable[[Any], Any]:
    """A function mapping a parameter tree to a bool tree: True where `pattern` matches the whole path."""

    def mask(tree: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, _: bool(pattern) and re.fullmatch(pattern, leaf_path(path)) is not None, tree)

    return mask


def paths(tree: Any) -> list[str]:
    """Every leaf's path in `tree`, in tree order."""
    return [leaf_path(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
