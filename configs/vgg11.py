"""VGG-11 on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg11.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~69.02% top-1 (torchvision's weights: 69.02%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg11 on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg11")
