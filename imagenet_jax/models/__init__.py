"""Model zoo: `create(name, num_classes, **variant_options)` returns a Flax linen module."""

from imagenet_jax.models import resnet  # noqa: F401  (registers the ResNet family)
from imagenet_jax.models.registry import UnknownModelError, create, default_image_size, names, register

__all__ = ["UnknownModelError", "create", "default_image_size", "names", "register"]
