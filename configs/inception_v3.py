"""Inception-v3 (299 px, auxiliary classifier) on ImageNet.

    python -m imagenet_jax.main --config configs/inception_v3.py --workdir DIR --config.data_dir=TFDS_DIR

torchvision's weights (ported from TensorFlow's RMSProp recipe) reach 77.29% top-1; this config trains it with
the modern SGD recipe (cosine, label smoothing 0.1 as in the Inception-v3 paper) at 299 px, eval crop 299/342.
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """Inception-v3 at 299 px with the modern recipe (no zero-init option: not a ResNet)."""
    config = modern_resnet("inception_v3")
    config.model_options = ml_collections.ConfigDict({"aux_logits": True})
    config.image_size = 299
    config.crop_pct = 299 / 342
    return config
