"""What one component owns of the config: its validator, the keys of it that may change when a run resumes, and
the keys it replaced. Each component declares its own section next to the code the keys configure; whoever
orchestrates components (the training loop, a task) validates a config through the sections of what it uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, ModuleType

import ml_collections


@dataclasses.dataclass(frozen=True)
class ConfigSection:
    """A component's config keys: `validate(config)` raises ConfigError naming a bad key; `resume_safe` keys may
    differ between a checkpoint's config and the resuming run's (they do not change what a step computes);
    `moved_keys` maps a removed key to where it went, for the "unknown key" error."""

    name: str
    validate: Callable[[ml_collections.ConfigDict], None]
    resume_safe: frozenset[str] = frozenset()
    moved_keys: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_module(cls, module: ModuleType) -> ConfigSection:
        """The section a component module declares by convention: its `validate_config(config)`, and optionally
        `RESUME_SAFE_KEYS` and `MOVED_KEYS` (so components need not import this module)."""
        return cls(name=module.__name__, validate=module.validate_config,
                   resume_safe=frozenset(getattr(module, "RESUME_SAFE_KEYS", ())),
                   moved_keys=MappingProxyType(dict(getattr(module, "MOVED_KEYS", {}))))


def resume_safe_keys(sections: Iterable[ConfigSection]) -> frozenset[str]:
    """Every key the sections allow to change on resume."""
    return frozenset().union(*(section.resume_safe for section in sections))


def moved_keys(sections: Iterable[ConfigSection]) -> dict[str, str]:
    """{removed key: where it went} of every section."""
    return {key: where for section in sections for key, where in section.moved_keys.items()}
