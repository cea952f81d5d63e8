"""Evaluators by name: `config.evals.<set>.type` picks one; adding an evaluator is one `@register` entry in a module
of this package (the registry imports every module of imagenet_jax.evaluators on its first lookup)."""

from __future__ import annotations

from collections.abc import Callable

from imagenet_jax.registry import Registry

EVALUATORS: Registry[type] = Registry("evaluator", config_key="evals", discover="imagenet_jax.evaluators")


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding an Evaluator subclass under `name` (its `type_name`)."""

    def add(cls: type) -> type:
        EVALUATORS.register(name, cls)
        cls.type_name = name
        return cls

    return add


def names() -> list[str]:
    """Every registered evaluator's name, sorted."""
    return EVALUATORS.names()


def get(name: str, key: str = "evals") -> type:
    """The evaluator class registered as `name`; ConfigError naming config.<key> with near matches otherwise."""
    return EVALUATORS.get(name, key=key)
