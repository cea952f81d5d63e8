"""ResNet-152 v1.5 on ImageNet with the modern ResNet recipe; consider --config.fsdp_devices to shard its
optimizer state.

    python -m imagenet_jax.main --config configs/resnet152.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~78.5% top-1 (torchvision V1 weights: 78.31%; V2 recipe: 82.28%).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet


def get_config() -> ml_collections.ConfigDict:
    """resnet152 on ImageNet with the modern_resnet recipe."""
    return modern_resnet("resnet152")
