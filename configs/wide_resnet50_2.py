"""Wide ResNet-50-2 (bottleneck width x2) on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/wide_resnet50_2.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~78.5% top-1 (torchvision V1 weights: 78.47%).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """wide_resnet50_2 on ImageNet with the modern_resnet recipe."""
    return modern_resnet("wide_resnet50_2")
