"""ResNet-101 v1.5 on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/resnet101.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~78% top-1 (torchvision V1 weights: 77.37%; its longer V2 recipe: 81.89%).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """resnet101 on ImageNet with the modern_resnet recipe."""
    return modern_resnet("resnet101")
