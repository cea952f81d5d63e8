"""Registry of model factories (`config.model`): every architecture is created by name.

Each architecture module of this package registers its names (`@register("resnet50", image_size=224)`); the
registry imports every module of the package on its first lookup, so a new architecture is one new module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn

from imagenet_jax.registry import Registry, UnknownNameError

ModelFactory = Callable[..., nn.Module]


class UnknownModelError(UnknownNameError, ValueError):
    """Raised when a model name is not registered (a ConfigError; still a ValueError for older callers)."""


MODELS: Registry[ModelFactory] = Registry("model", config_key="model", discover="imagenet_jax.models",
                                          error=UnknownModelError)


def register(name: str, image_size: int = 224,
             min_image_size: int | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering `factory(num_classes=..., **options)` under `name`, published at `image_size`;
    `min_image_size` is the smallest input its layers accept (default: 32, or image_size if smaller)."""
    smallest = min(32, image_size) if min_image_size is None else min_image_size
    return MODELS.register(name, image_size=image_size, min_image_size=smallest)


def names() -> list[str]:
    """All registered model names, sorted."""
    return MODELS.names()


def default_image_size(name: str) -> int:
    """The input resolution a registered model was published at."""
    return MODELS.info(name)["image_size"]


def min_image_size(name: str) -> int:
    """The smallest input resolution a registered model accepts (its pooling and strides need that many pixels)."""
    return MODELS.info(name)["min_image_size"]


def create(name: str, num_classes: int = 1000, **options) -> nn.Module:
    """Builds the registered model `name`; `options` are its variant options."""
    return MODELS.get(name)(num_classes=num_classes, **options)


# Set by the training config itself (dtype, num_classes, config.bn_group_size) or structural, not variant options.
_NOT_OPTIONS = frozenset({"parent", "name", "num_classes", "dtype", "bn_group_size"})


def default_options(name: str) -> dict[str, bool | int | float | str]:
    """Every scalar variant option of model `name` with its default, so configs can list them all and
    `--config.model_options.KEY=VALUE` can override any of them (ml_collections cannot add keys)."""
    module = create(name)
    return {field.name: getattr(module, field.name) for field in dataclasses.fields(module)
            if field.name not in _NOT_OPTIONS and isinstance(getattr(module, field.name), bool | int | float | str)}
