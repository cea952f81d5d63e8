"""VGG-19 on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg19.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~72.38% top-1 (torchvision's weights: 72.38%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg19 on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg19")
