"""He et al. 2016, "Deep Residual Learning for Image Recognition", Table 2: plain vs residual nets on ImageNet.

    python -m imagenet_jax.sweep --config configs/papers/resnet_table2.py --workdir runs/resnet_table2 \
        --config.data_dir=TFDS_DIR
    python -m imagenet_jax.main --config configs/papers/resnet_table2.py:plain34 --config.data_dir=TFDS_DIR

Table 2 (top-1 error, %, 10-crop testing on the validation set): plain-18 27.94, plain-34 28.54, ResNet-18 27.88,
ResNet-34 25.03 — the deeper plain net is worse than the shallower one (degradation); the deeper residual net is
better. The paper's protocol: batch 256, SGD momentum 0.9, LR 0.1 divided by 10 when the error plateaus, up to 60e4
iterations (~120 epochs), weight decay 1e-4, no dropout, BN after every conv, scale augmentation (short side
~U[256, 480], random 224 crop, flip; plus PCA colour noise, not implemented here).
Differences here: the LR drops at epochs 30/60/90 of 120 (the paper's plateaus are not published); dimension-
increasing shortcuts are 1x1 projections (option B; Table 2 used option A, zero-padding — Table 3 gives ResNet-34
B at 24.52); evaluation is one 224 center crop of the 256 px resize, not 10 crops, so expect ~1-2 points higher
errors than the table (an estimate, not measured here).
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="ResNet (He et al. 2016), Table 2: plain vs residual, 18 and 34 layers",
    source="He et al., CVPR 2016, Table 2",
    metric="top1_error",
    protocol="ImageNet validation, 10-crop testing, ~120 epochs",
    dataset="ImageNet",
)
VARIANTS = {"plain18": 27.94, "plain34": 28.54, "resnet18": 27.88, "resnet34": 25.03}


def get_config(variant: str = "resnet34") -> ml_collections.ConfigDict:
    """"plain18", "plain34", "resnet18" or "resnet34"."""
    variant = select_variant(VARIANTS, variant, "resnet34")
    config = get_base_config()
    config.model = "resnet" + variant[-2:]
    config.model_options = model_options(
        config.model, version="v1", stem="imagenet", shortcut="projection", residual=variant.startswith("resnet"),
        zero_init_last_bn=False)
    config.train_preprocess = "scale_jitter_crop(256, 480)|flip_lr"
    config.crop_pct = 224 / 256
    config.batch_size = 256
    config.num_epochs = 120.0
    config.learning_rate = 0.1
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": False}})
    config.weight_decay = 1e-4
    config.weight_decay_multipliers = ()  # every parameter decays, as in the paper's Caffe/Torch setups
    config.schedule = ml_collections.ConfigDict({
        "name": "step", "warmup_epochs": 0.0, "kwargs": {"boundaries_epochs": (30.0, 60.0, 90.0), "factor": 0.1}})
    config.label_smoothing = 0.0
    return config
