"""VGG-16 on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg16.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~71.59% top-1 (torchvision's weights: 71.59%).
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """vgg16 on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("vgg16")
