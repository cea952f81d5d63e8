"""VGG-13 on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg13.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~69.93% top-1 (torchvision's weights: 69.93%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg13 on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg13")
