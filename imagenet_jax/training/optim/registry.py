"""A registry of named factories whose keyword arguments come from a config sub-dict, checked up front.

`config.<key>.name` picks a factory and `config.<key>.kwargs` fills its keyword-only arguments; the factory's
signature is the schema (names, and types read from the defaults), so adding an entry is adding a function.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from imagenet_jax.errors import ConfigError

Check = Callable[..., None]  # check(kwargs, **context) raises ConfigError for bad values


class Registry:
    """Factories by name; `reserved` are the leading arguments the builder supplies, never the config."""

    def __init__(self, key: str, reserved: tuple[str, ...],
                 fallback: Callable[[str], Callable | None] | None = None, fallback_names: Callable[[], list[str]]
                 | None = None):
        """`key` is the config sub-dict ("optimizer"); `fallback(name)` resolves names not registered."""
        self.key = key
        self.reserved = reserved
        self._factories: dict[str, Callable] = {}
        self._checks: dict[str, Check] = {}
        self._fallback = fallback
        self._fallback_names = fallback_names or (lambda: [])

    def register(self, name: str, check: Check | None = None) -> Callable[[Callable], Callable]:
        """Decorator adding `factory` under `name`; `check(kwargs, **context)` validates argument values."""

        def decorator(factory: Callable) -> Callable:
            if name in self._factories:
                raise ValueError(f"{self.key} {name!r} is registered twice")
            self._factories[name] = factory
            if check is not None:
                self._checks[name] = check
            return factory

        return decorator

    def names(self) -> list[str]:
        """Registered names, sorted (fallback names not included)."""
        return sorted(self._factories)

    def is_registered(self, name: str) -> bool:
        """True for our own entries, False for names the fallback resolves."""
        return name in self._factories

    def get(self, name: str) -> Callable:
        """The factory for `name`; ConfigError listing the valid names if there is none."""
        if name in self._factories:
            return self._factories[name]
        factory = self._fallback(name) if self._fallback and isinstance(name, str) else None
        if factory is None:
            valid = self.names() + [n for n in self._fallback_names() if n not in self._factories]
            close = difflib.get_close_matches(str(name), valid, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"config.{self.key}.name={name!r} is unknown.{hint} Valid names: {', '.join(valid)}.")
        return factory

    def accepted(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword arguments `name` takes from config.<key>.kwargs, by name."""
        parameters = inspect.signature(self.get(name)).parameters
        return {key: parameter for key, parameter in parameters.items()
                if key not in self.reserved and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}

    def check(self, name: str, kwargs: Mapping[str, Any], **context) -> None:
        """Raises ConfigError naming the key for an unknown name, unknown/missing kwargs or values of a wrong type."""
        accepted = self.accepted(name)
        listing = ", ".join(f"{key}={_default_text(parameter)}" for key, parameter in accepted.items()) or "none"
        for key, value in kwargs.items():
            if key not in accepted:
                raise ConfigError(f"config.{self.key}.kwargs.{key} is not an argument of {self.key} {name!r}; it "
                                  f"accepts: {listing}.")
            _check_type(f"config.{self.key}.kwargs.{key}", value, accepted[key].default)
        missing = [key for key, parameter in accepted.items()
                   if parameter.default is inspect.Parameter.empty and key not in kwargs]
        if missing:
            raise ConfigError(f"{self.key} {name!r} needs config.{self.key}.kwargs.{missing[0]} (accepts: {listing}).")
        if name in self._checks:
            self._checks[name]({**_defaults(accepted), **kwargs}, **context)


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
