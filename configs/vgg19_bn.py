"""VGG-19 with BatchNorm on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg19_bn.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~74.22% top-1 (torchvision's weights: 74.22%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg19_bn on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg19_bn")
