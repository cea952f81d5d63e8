"""Transfer learning: frozen parameters (config.freeze, config.linear_probe) and frozen BatchNorm layers.

A frozen parameter gets no update: the optimizer routes it to `optax.set_to_zero` (optax.multi_transform), so
neither its moments nor weight decay ever see it, and the step keeps its old value (bit-equal, even for -0.0).
A BatchNorm layer whose parameters are all frozen runs in inference mode while training: it normalizes with
its running statistics and does not update them (a method interceptor; the models stay unaware of freezing).
`linear_probe=True` freezes everything but the classifier: the module(s) holding a 2-D kernel with
num_classes outputs, the array `init_from` re-initializes for a new class count (init_from.py).
Discriminative fine-tuning (lower rates for early layers) is config.lr_multipliers, e.g.
(("stem.*|stage1.*", 0.1), ("stage2.*", 0.3)).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel.mesh import leaf_path
from imagenet_jax.training.optim import param_rules

FROZEN, TRAINED = "frozen", "trained"


@dataclasses.dataclass(frozen=True)
class Freeze:
    """Which parameters a run keeps fixed: regexes over '/'-joined paths, and/or all but the classifier."""

    patterns: tuple[str, ...] = ()
    linear_probe: bool = False
    num_classes: int = 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, num_classes: int) -> Freeze | None:
        """The freeze of `config`; None when nothing is frozen."""
        if not config.freeze and not config.linear_probe:
            return None
        return cls(tuple(config.freeze), bool(config.linear_probe), num_classes)

    def frozen_paths(self, params: Any) -> frozenset[str]:
        """Paths of the frozen leaves of `params` (static: computed from the tree's structure and shapes)."""
        paths = param_rules.paths(params)
        frozen = {path for path in paths if any(re.fullmatch(pattern, path) for pattern in self.patterns)}
        if self.linear_probe:
            heads = classifier_modules(params, self.num_classes)
            frozen |= {path for path in paths if path.rpartition("/")[0] not in heads}
        return frozenset(frozen)

    def labels(self, params: Any) -> Any:
        """FROZEN or TRAINED per leaf, for optax.multi_transform."""
        frozen = self.frozen_paths(params)
        return jax.tree_util.tree_map_with_path(
            lambda path, _: FROZEN if leaf_path(path) in frozen else TRAINED, params)

    def keep_frozen(self, new_params: Any, old_params: Any) -> Any:
        """`new_params` with every frozen leaf taken from `old_params` (exactly the old bits)."""
        frozen = self.frozen_paths(old_params)
        return jax.tree_util.tree_map_with_path(
            lambda path, new, old: old if leaf_path(path) in frozen else new, new_params, old_params)

    @contextlib.contextmanager
    def batch_norm_in_inference(self, params: Any) -> Iterator[None]:
        """Inside: BatchNorm layers whose parameters are all frozen use (and keep) their running statistics."""
        frozen = self.frozen_paths(params)

        def intercept(next_fun, args, kwargs, context):
            module = context.module
            if context.method_name != "__call__" or not hasattr(module, "use_running_average") \
                    or not _all_frozen(module, frozen):
                return next_fun(*args, **kwargs)
            if "use_running_average" in kwargs:
                return next_fun(*args, **{**kwargs, "use_running_average": True})
            previous = module.use_running_average
            # Module fields are frozen dataclass fields; this instance lives only for this apply, so setting the
            # field for the duration of the call is local to it.
            object.__setattr__(module, "use_running_average", True)
            try:
                return next_fun(*args, **kwargs)
            finally:
                object.__setattr__(module, "use_running_average", previous)

        with nn.intercept_methods(intercept):
            yield


def _all_frozen(module: nn.Module, frozen: frozenset[str]) -> bool:
    own = module.variables.get("params", {}) if module.scope is not None else {}
    prefix = "/".join(module.path)
    return bool(own) and all(f"{prefix}/{name}" in frozen for name in own)


def classifier_modules(params: Any, num_classes: int) -> set[str]:
    """Module paths holding a 2-D kernel with `num_classes` outputs: the classifier (and auxiliary classifiers)."""
    heads = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = leaf_path(path)
        if name.endswith("kernel") and len(leaf.shape) == 2 and leaf.shape[-1] == num_classes:
            heads.add(name.rpartition("/")[0])
    return heads


def freeze_optimizer(optimizer: optax.GradientTransformation, freeze: Freeze | None) -> optax.GradientTransformation:
    """`optimizer` for the trained leaves, zero updates (and no state) for the frozen ones."""
    if freeze is None:
        return optimizer
    return optax.multi_transform({TRAINED: optimizer, FROZEN: optax.set_to_zero()}, freeze.labels)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming config.freeze, config.init_from_layers or config.linear_probe when malformed (a probe and
    a layer selection need config.init_from)."""
    _check_regexes(config, "freeze", "('stem_.*', 'stage1_.*')")
    _check_regexes(config, "init_from_layers", "('block1_conv1/.*', 'fc1/.*')")
    if config.init_from_layers and not config.init_from:
        raise ConfigError("config.init_from_layers selects the arrays loaded from config.init_from, which is empty: "
                          "set config.init_from, or leave init_from_layers ().")
    if not isinstance(config.linear_probe, bool):
        raise ConfigError(f"config.linear_probe={config.linear_probe!r} must be True or False.")
    if config.linear_probe and not config.init_from:
        raise ConfigError("config.linear_probe=True trains only the classifier on top of pretrained features: set "
                          "config.init_from to the pretrained weights.")


def _check_regexes(config: ml_collections.ConfigDict, key: str, example: str) -> None:
    patterns = config[key]
    if isinstance(patterns, str) or not isinstance(patterns, (tuple, list)):
        raise ConfigError(f"config.{key}={patterns!r} must be a tuple of regexes over parameter paths, "
                          f"e.g. {example}.")
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(f"config.{key}: {pattern!r} must be a regex string.")
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"config.{key}: {pattern!r} is not a regular expression ({error}).") from None
