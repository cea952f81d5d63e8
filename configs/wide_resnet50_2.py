"""Wide ResNet-50-2 (bottleneck width x2) on ImageNet with the modern ResNet recipe.

    python -m imagenet_jax.main --config configs/wide_resnet50_2.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 78.47% top-1, torchvision's IMAGENET1K_V1 weights (step schedule, not this recipe).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:wide_resnet50_2, under this file's name (default workdir runs/wide_resnet50_2)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:wide_resnet50_2"))
