"""Evaluators by name: `config.evals.<set>.type` picks one; adding an evaluator is one `@register` entry."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from imagenet_jax.errors import ConfigError

_EVALUATORS: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding an Evaluator subclass under `name`."""

    def add(cls: type) -> type:
        if name in _EVALUATORS:
            raise ValueError(f"evaluator {name!r} is registered twice")
        _EVALUATORS[name] = cls
        cls.type_name = name
        return cls

    return add


def names() -> list[str]:
    """Every registered evaluator's name, sorted."""
    _import_all()
    return sorted(_EVALUATORS)


def get(name: str, key: str = "evals") -> type:
    """The evaluator class registered as `name`; ConfigError naming config.<key> with near matches otherwise."""
    _import_all()
    if name not in _EVALUATORS:
        close = difflib.get_close_matches(str(name), list(_EVALUATORS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"config.{key}={name!r} is not an evaluator; known: {', '.join(sorted(_EVALUATORS))}.{hint}")
    return _EVALUATORS[name]


def _import_all() -> None:
    # The modules register themselves on import.
    from imagenet_jax.evaluators import (  # noqa: F401
        adversarial,
        calibration,
        classification,
        corruptions,
        multicrop,
        per_class,
    )
