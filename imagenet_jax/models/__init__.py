"""Model zoo: `create(name, num_classes, **variant_options)` returns a Flax linen module.

Architecture modules register their names themselves; the registry (models/registry.py) imports every module of
this package on its first lookup, so there is no list of architectures to keep here.
"""

from imagenet_jax.models.conv_lowering import set_cpu_conv_lowering
from imagenet_jax.models.from_config import model_from_config
from imagenet_jax.models.outputs import auxiliary_loss_weight, split_outputs
from imagenet_jax.models.registry import (
    MODELS,
    UnknownModelError,
    create,
    default_image_size,
    default_options,
    min_image_size,
    names,
    register,
)

__all__ = ["MODELS", "UnknownModelError", "auxiliary_loss_weight", "create", "default_image_size", "default_options",
           "min_image_size", "model_from_config", "names", "register", "set_cpu_conv_lowering", "split_outputs"]
