"""ResNet-34 on ImageNet with the modern ResNet recipe (see configs/resnet50.py).

    python -m imagenet_jax.main --config configs/resnet34.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~73.3% or better top-1 (torchvision's step-schedule weights: 73.31%).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """resnet34 on ImageNet with the modern_resnet recipe."""
    return modern_resnet("resnet34")
