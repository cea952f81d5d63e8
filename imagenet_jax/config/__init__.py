"""Config schema (every key with its default) and up-front validation."""

from imagenet_jax.config.base import get_base_config
from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.validate import validate_config

__all__ = ["get_base_config", "load_config_file", "validate_config"]
