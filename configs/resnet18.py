"""ResNet-18 on ImageNet (TFDS imagenet2012) with the ResNet-50 recipe.

    python -m imagenet_jax.main --config configs/resnet18.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here (no ImageNet run of this config in this repository). Published: 69.76% top-1,
torchvision's ResNet-18 IMAGENET1K_V1 weights (step schedule, 90 epochs, no label smoothing). No published figure
for this config's recipe (cosine, label smoothing) on ResNet-18 is cited here; the "~70-71%" this docstring gave
before was an estimate, not a measurement.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet18, under this file's name (default workdir runs/resnet18)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet18"))
