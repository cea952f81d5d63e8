"""Config schema (every key with its default), config files and overrides (`get`); a whole config is validated
above every part it configures, in imagenet_jax.experiment.validate."""

from imagenet_jax.config.base import get_base_config
from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.overrides import apply_overrides, get

__all__ = ["apply_overrides", "get", "get_base_config", "load_config_file"]
