"""Model compression as configs of the one training loop: magnitude pruning (pruning.py, config.pruning) and int8
quantization through qwix (quantization.py, config.quantization); `python -m imagenet_jax.compress report|quantize`
measures a run (report.py)."""

from __future__ import annotations

import ml_collections
from flax import linen as nn

__all__ = ["for_training", "validate_config"]


def for_training(config: ml_collections.ConfigDict, model: nn.Module) -> nn.Module:
    """The model the train loop uses: qwix fake-quantized with config.quantization.mode="qat", else `model`."""
    if not config.quantization.mode:
        return model
    from imagenet_jax.compress import quantization

    return quantization.for_training(config, model)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the bad config.pruning / config.quantization key."""
    from imagenet_jax.compress import pruning, quantization

    pruning.validate_config(config)
    quantization.validate_config(config)
