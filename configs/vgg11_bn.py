"""VGG-11 with BatchNorm on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg11_bn.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~70.37% top-1 (torchvision's weights: 70.37%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg11_bn on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg11_bn")
