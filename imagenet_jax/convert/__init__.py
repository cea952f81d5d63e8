"""Weight import: torchvision state dicts and keras.applications models -> this zoo's Flax variables."""

from imagenet_jax.convert.keras_weights import (
    from_keras,
    keras_input_normalization,
    keras_model_options,
    keras_preprocessing,
)
from imagenet_jax.convert.serialization import load_converted, save_converted
from imagenet_jax.convert.torchvision_weights import from_torchvision

__all__ = [
    "from_keras",
    "from_torchvision",
    "keras_input_normalization",
    "keras_model_options",
    "keras_preprocessing",
    "load_converted",
    "save_converted",
]
