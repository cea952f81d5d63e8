"""ResNet-18 on ImageNet (TFDS imagenet2012) with the ResNet-50 recipe.

    python -m imagenet_jax.main --config configs/resnet18.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~70-71% top-1 after 90 epochs (torchvision's step-schedule ResNet-18: 69.76%; cosine and label
smoothing add about a point).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """ImageNet resnet18 with the modern ResNet recipe."""
    return modern_resnet("resnet18")
