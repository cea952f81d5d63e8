"""GoogLeNet (Inception v1) with its two auxiliary classifiers (training only; each loss weighted by the model's
aux_loss_weight, 0.3 as in the paper: change it with --config.model_options.aux_loss_weight).

    python -m imagenet_jax.main --config configs/googlenet.py --workdir DIR --config.data_dir=TFDS_DIR

Published, not measured here: 69.78% top-1, torchvision's
IMAGENET1K_V1 weights (its model card).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:googlenet, under this file's name (default workdir runs/googlenet)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:googlenet"))
