"""One "look up by name" mechanism for every kind of named entry: models, datasets, preprocessing ops, optimizers,
schedules, losses, evaluators, export formats, compression methods.

    MODELS = Registry("model", config_key="model", discover="imagenet_jax.models")

    @MODELS.register("resnet50", image_size=224, check=_check_options)
    def resnet50(num_classes, **options): ...

    MODELS.get("resnt50")  # UnknownNameError: config.model='resnt50' is not a registered model. Did you mean ...

Entries register themselves where they are defined (as a decorator or a call), with per-entry metadata (`info`)
and an optional validator of that entry's own options (`check`). A registry with `discover=PACKAGE` imports every
module of that package on its first lookup, so adding an entry never means editing an import list, and importing
the package that declares the registry stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from imagenet_jax.errors import ConfigError

T = TypeVar("T")
Check = Callable[..., None]  # check(options, **context) raises ConfigError for a bad option value


class UnknownNameError(ConfigError, LookupError):
    """A name that no entry of a registry has; the message names the config key and the closest names."""

    def __init__(self, message: str, *, kind: str = "", name: Any = None, close: tuple[str, ...] = ()):
        """`kind`, `name` and `close` (the near matches) are kept for callers that reword the message."""
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.close = close


class Registry(Generic[T]):
    """Entries of one kind by name; see the module docstring."""

    def __init__(self, kind: str, *, config_key: str | None = None, discover: str | Iterable[str] | None = None,
                 error: type[UnknownNameError] = UnknownNameError,
                 fallback: Callable[[str], T | None] | None = None,
                 fallback_names: Callable[[], Iterable[str]] | None = None, also: str = ""):
        """`kind` names an entry in messages ("model"); `config_key` is the key that picks one ("model" for
        config.model); `discover` a package (or module names) imported on first lookup so its modules register
        their entries; `error` the UnknownNameError subclass raised; `fallback(name)` resolves a name no entry has
        (None: unknown), `fallback_names()` lists the names it resolves (for near matches) and `also` says in the
        unknown-name message what else is accepted (", a TFDS dataset or folder:PATH")."""
        if not issubclass(error, UnknownNameError):
            raise TypeError(f"Registry({kind!r}): error={error.__name__} must subclass UnknownNameError")
        self.kind = kind
        self.config_key = config_key
        self._discover = (discover,) if isinstance(discover, str) else tuple(discover or ())
        self._error = error
        self._fallback = fallback
        self._fallback_names = fallback_names
        self._also = also
        self._entries: dict[str, T] = {}
        self._info: dict[str, types.MappingProxyType] = {}
        self._checks: dict[str, Check] = {}
        self._discovered = not self._discover
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        """Registry('model', config_key='model', 19 entries)."""
        return f"Registry({self.kind!r}, config_key={self.config_key!r}, {len(self._entries)} entries)"

    # ------------------------------------------------------------------------------------------------ adding

    @overload
    def register(self, name: str, entry: None = None, *, check: Check | None = None,
                 **info: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T, *, check: Check | None = None, **info: Any) -> T: ...

    def register(self, name: str, entry: T | None = None, *, check: Check | None = None,
                 **info: Any) -> T | Callable[[T], T]:
        """Adds `entry` under `name` (returns it); without `entry`, a decorator that does. `check(options,
        **context)` validates that entry's options; `info` is its metadata. A name registered twice is refused."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, not {name!r}")

        def add(value: T) -> T:
            with self._lock:
                if name in self._entries:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self._entries[name] = value
                self._info[name] = types.MappingProxyType(dict(info))
                if check is not None:
                    self._checks[name] = check
            return value

        return add if entry is None else add(entry)

    def unregister(self, name: str) -> T:
        """Removes `name` and returns its entry (for tests that add a temporary entry); KeyError if absent."""
        with self._lock:
            entry = self._entries.pop(name)
            self._info.pop(name)
            self._checks.pop(name, None)
        return entry

    # ---------------------------------------------------------------------------------------------- looking up

    def get(self, name: str, *, key: str | None = None) -> T:
        """The entry registered as `name` (else the fallback's); UnknownNameError naming config.<key> otherwise
        (`key` defaults to the registry's config_key)."""
        self._ensure_discovered()
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        if self._fallback is not None and isinstance(name, str):
            entry = self._fallback(name)
            if entry is not None:
                return entry
        raise self.unknown(name, key=key)

    def __contains__(self, name: object) -> bool:
        """True for registered names (fallback names not included)."""
        self._ensure_discovered()
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        """The registered names, sorted."""
        return iter(self.names())

    def __len__(self) -> int:
        """The number of registered entries."""
        self._ensure_discovered()
        return len(self._entries)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._ensure_discovered()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) of every registered entry, sorted by name."""
        self._ensure_discovered()
        return sorted(self._entries.items())

    def info(self, name: str, *, key: str | None = None) -> Mapping[str, Any]:
        """The metadata `name` was registered with (read-only); UnknownNameError for an unknown name."""
        self._ensure_discovered()
        if name not in self._entries:
            raise self.unknown(name, key=key)
        return self._info[name]

    def check(self, name: str, options: Mapping[str, Any] | None = None, *, key: str | None = None,
              **context: Any) -> None:
        """Runs the validator `name` was registered with on its `options` (nothing if it has none);
        UnknownNameError for an unknown name. `context` goes to the validator as keyword arguments."""
        self.get(name, key=key)
        validator = self._checks.get(name)
        if validator is not None:
            validator(dict(options or {}), **context)

    def has_check(self, name: str) -> bool:
        """True when `name` was registered with a validator."""
        self._ensure_discovered()
        return name in self._checks

    def unknown(self, name: Any, *, key: str | None = None, valid: Iterable[str] | None = None,
                subject: str | None = None) -> UnknownNameError:
        """The error for unknown `name` (for callers that look up in their own way): one line naming
        config.<key>, the closest names and the registered ones (`valid`, default: all registered names, then
        the fallback's). `subject` replaces its opening "config.<key>=<name>" (e.g. "config.chain: op 'x'")."""
        self._ensure_discovered()
        key = key if key is not None else self.config_key
        if valid is None:
            registered = self.names()
            others = [n for n in (self._fallback_names() if self._fallback_names else ()) if n not in self._entries]
        else:
            registered, others = list(valid), []
        close = tuple(difflib.get_close_matches(str(name), registered + others, n=3))
        if subject is None:
            subject = f"config.{key}={name!r}" if key else repr(name)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        listing = f" Registered: {', '.join(registered)}." if registered else f" No {self.kind} is registered."
        if others:
            listing += f" Also valid: {', '.join(others)}."
        message = f"{subject} is not a registered {self.kind}{self._also}.{hint}{listing}"
        return self._error(message, kind=self.kind, name=name, close=close)

    # ---------------------------------------------------------------------------------------------- discovery

    def _ensure_discovered(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # first: a discovered module may itself look names up while importing
            try:
                for package in self._discover:
                    for module in discover_modules(package):
                        importlib.import_module(module)
            except BaseException:
                self._discovered = False
                raise


def discover_modules(package: str) -> list[str]:
    """`package` itself and the full names of its direct modules and subpackages, skipping `__main__` and private
    ones (a leading underscore); a plain module gives just itself."""
    root = importlib.import_module(package)
    found = [package]
    if hasattr(root, "__path__"):
        found += sorted(f"{package}.{module.name}" for module in pkgutil.iter_modules(root.__path__)
                        if not module.name.startswith("_"))
    return found
