"""ResNeXt-50 (32x4d) on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/resnext50_32x4d.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 77.62% top-1, torchvision's IMAGENET1K_V1 weights (step schedule, not this recipe).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnext50_32x4d, under this file's name (default workdir runs/resnext50_32x4d)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnext50_32x4d"))
