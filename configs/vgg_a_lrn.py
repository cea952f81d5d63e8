"""VGG configuration A-LRN (A with local response normalization), the VGG paper's recipe, for rerunning its
Tables 1 and 3.

    python -m imagenet_jax.main --config configs/vgg_a_lrn.py --workdir DIR --config.data_dir=TFDS_DIR

Expect ~29.7% top-1 error at single-scale test (Simonyan & Zisserman 2015, Table 3, train scale 256);
--config.model_options.batch_norm=True adds BN.
"""

import ml_collections

from imagenet_jax.config.recipes import vgg_paper


def get_config() -> ml_collections.ConfigDict:
    """vgg_a_lrn on ImageNet with the vgg_paper recipe."""
    return vgg_paper("vgg_a_lrn", batch_norm=False)
