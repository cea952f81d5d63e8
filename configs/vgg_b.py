"""VGG configuration B (13 layers), the VGG paper's recipe, for rerunning its Tables 1 and 3.

    python -m imagenet_jax.main --config configs/vgg_b.py --workdir DIR --config.data_dir=TFDS_DIR

Published, not measured here: Table 3 (Simonyan & Zisserman 2015): 28.7% top-1 error at S=256, single-scale test;
this recipe jitters the training scale S~[256, 512] and tests at Q=384, as the paper's best single-scale rows;
--config.model_options.batch_norm=True adds BN.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:vgg_b, under this file's name (default workdir runs/vgg_b)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:vgg_b"))
