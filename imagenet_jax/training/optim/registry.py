"""A registry of named factories whose keyword arguments come from a config sub-dict, checked up front.

`config.<key>.name` picks a factory and `config.<key>.kwargs` fills its keyword-only arguments; the factory's
signature is the schema (names, and types read from the defaults), so adding an entry is adding a function.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from imagenet_jax import registry
from imagenet_jax.errors import ConfigError

Check = Callable[..., None]  # check(kwargs, **context) raises ConfigError for bad values


class Registry(registry.Registry[Callable]):
    """Factories by name (imagenet_jax.registry.Registry, config key config.<key>.name); `reserved` are the leading
    arguments the builder supplies, never the config."""

    def __init__(self, key: str, reserved: tuple[str, ...], fallback: Callable[[str], Callable | None] | None = None,
                 fallback_names: Callable[[], Iterable[str]] | None = None, also: str = ""):
        """`key` is the config sub-dict ("optimizer"); `fallback(name)` resolves names not registered."""
        super().__init__(key, config_key=f"{key}.name", fallback=fallback, fallback_names=fallback_names, also=also)
        self.key = key
        self.reserved = reserved

    def is_registered(self, name: str) -> bool:
        """True for our own entries, False for names the fallback resolves."""
        return name in self

    def accepted(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword arguments `name` takes from config.<key>.kwargs, by name."""
        parameters = inspect.signature(self.get(name)).parameters
        return {key: parameter for key, parameter in parameters.items()
                if key not in self.reserved and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}

    def check(self, name: str, kwargs: Mapping[str, Any] | None = None, *, key: str | None = None,
              **context: Any) -> None:
        """Raises ConfigError naming the key for an unknown name, unknown/missing kwargs or values of a wrong type,
        then runs the entry's own check(kwargs with defaults, **context)."""
        kwargs = dict(kwargs or {})
        self.get(name, key=key)
        accepted = self.accepted(name)
        listing = ", ".join(f"{arg}={_default_text(parameter)}" for arg, parameter in accepted.items()) or "none"
        for arg, value in kwargs.items():
            if arg not in accepted:
                raise ConfigError(f"config.{self.key}.kwargs.{arg} is not an argument of {self.key} {name!r}; it "
                                  f"accepts: {listing}.")
            _check_type(f"config.{self.key}.kwargs.{arg}", value, accepted[arg].default)
        missing = [arg for arg, parameter in accepted.items()
                   if parameter.default is inspect.Parameter.empty and arg not in kwargs]
        if missing:
            raise ConfigError(f"{self.key} {name!r} needs config.{self.key}.kwargs.{missing[0]} (accepts: {listing}).")
        super().check(name, {**_defaults(accepted), **kwargs}, key=key, **context)


def _defaults(accepted: dict[str, inspect.Parameter]) -> dict[str, Any]:
    return {key: p.default for key, p in accepted.items() if p.default is not inspect.Parameter.empty}


def _default_text(parameter: inspect.Parameter) -> str:
    return "REQUIRED" if parameter.default is inspect.Parameter.empty else repr(parameter.default)


def _check_type(key: str, value: Any, default: Any) -> None:
    # The default's type is the schema: a bool stays a bool, a number a (finite) number, a tuple a sequence.
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, (tuple, list))
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{key}={value!r} must be of the same kind as its default {default!r}.")
