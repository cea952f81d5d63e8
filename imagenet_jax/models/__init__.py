"""Model zoo: `create(name, num_classes, **variant_options)` returns a Flax linen module."""

# Importing each architecture module registers its names.
from imagenet_jax.models import alexnet, googlenet, inception_v3, resnet, vgg  # noqa: F401
from imagenet_jax.models.conv_lowering import set_cpu_conv_lowering
from imagenet_jax.models.from_config import model_from_config
from imagenet_jax.models.outputs import auxiliary_loss_weight, split_outputs
from imagenet_jax.models.registry import (
    UnknownModelError,
    create,
    default_image_size,
    default_options,
    names,
    register,
)

__all__ = ["UnknownModelError", "auxiliary_loss_weight", "create", "default_image_size", "default_options",
           "model_from_config", "names",
           "register", "set_cpu_conv_lowering", "split_outputs"]
