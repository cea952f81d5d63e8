"""ResNet-152 v1.5 on ImageNet with the modern ResNet recipe; consider --config.fsdp_devices to shard its
optimizer state.

    python -m imagenet_jax.main --config configs/resnet152.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 78.31% top-1, torchvision's IMAGENET1K_V1 weights (step schedule, not this
recipe); 82.28% with its longer IMAGENET1K_V2 recipe.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet152, under this file's name (default workdir runs/resnet152)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet152"))
