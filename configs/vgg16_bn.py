"""VGG-16 with BatchNorm on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/vgg16_bn.py --workdir DIR --config.data_dir=TFDS_DIR

Published, not measured here: 73.36% top-1, torchvision's
IMAGENET1K_V1 weights (its model card).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:vgg16_bn, under this file's name (default workdir runs/vgg16_bn)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:vgg16_bn"))
