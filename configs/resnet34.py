"""ResNet-34 on ImageNet with the modern ResNet recipe (see configs/resnet50.py).

    python -m imagenet_jax.main --config configs/resnet34.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 73.31% top-1, torchvision's IMAGENET1K_V1 weights (step schedule).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet34, under this file's name (default workdir runs/resnet34)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet34"))
