"""VGG-16 with BatchNorm on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg16_bn.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~73.36% top-1 (torchvision's weights: 73.36%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg16_bn on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg16_bn")
