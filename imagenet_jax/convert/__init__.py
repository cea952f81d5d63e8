"""Weight import: torchvision state dicts and keras.applications models -> this zoo's Flax variables."""

from imagenet_jax.convert.keras_weights import from_keras, keras_model_options
from imagenet_jax.convert.serialization import load_converted, save_converted
from imagenet_jax.convert.torchvision_weights import from_torchvision

__all__ = ["from_keras", "from_torchvision", "keras_model_options", "load_converted", "save_converted"]
