"""ResNet-101 v1.5 on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/resnet101.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 77.37% top-1, torchvision's IMAGENET1K_V1 weights (step schedule, not this
recipe); 81.89% with its longer IMAGENET1K_V2 recipe.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet101, under this file's name (default workdir runs/resnet101)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet101"))
