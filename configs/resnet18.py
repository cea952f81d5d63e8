"""ResNet-18 on ImageNet (TFDS imagenet2012) with the ResNet-50 recipe.

    python -m imagenet_jax.main --config configs/resnet18.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~70-71% top-1 after 90 epochs (torchvision's step-schedule ResNet-18: 69.76%; cosine and label
smoothing add about a point).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet18, under this file's name (default workdir runs/resnet18)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet18"))
