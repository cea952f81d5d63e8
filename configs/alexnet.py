"""AlexNet (torchvision's single-tower layout) on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/alexnet.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~56.5% top-1 (torchvision's weights: 56.52%). The paper's LRN: --config.model_options.lrn=True.
"""

import ml_collections

from imagenet_jax.config.recipes import torchvision_classic


def get_config() -> ml_collections.ConfigDict:
    """alexnet on ImageNet with the torchvision_classic recipe."""
    return torchvision_classic("alexnet", lrn=False)
