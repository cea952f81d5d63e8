"""ResNeXt-50 (32x4d) on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/resnext50_32x4d.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~77.6% top-1 (torchvision V1 weights: 77.62%).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """resnext50_32x4d on ImageNet with the modern_resnet recipe."""
    return modern_resnet("resnext50_32x4d")
