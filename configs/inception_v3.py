"""Inception-v3 (299 px, auxiliary classifier) on ImageNet.

    python -m imagenet_jax.main --config configs/inception_v3.py --workdir DIR --config.data_dir=TFDS_DIR

Not measured here. Published: 77.29% top-1, torchvision's weights (ported from TensorFlow's RMSProp recipe);
this config trains it with the modern SGD recipe (cosine, label smoothing 0.1 as in the Inception-v3 paper) at
299 px, eval crop 299/342 (no published figure for that recipe on Inception-v3 is cited here).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:inception_v3, under this file's name (default workdir runs/inception_v3)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:inception_v3"))
