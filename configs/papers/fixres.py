"""Touvron, Vedaldi, Douze & Jegou 2019, "Fixing the train-test resolution discrepancy" (FixRes): train at one
resolution, then fine-tune at the test resolution only the classifier and the BatchNorm preceding the global pooling.

    python -m imagenet_jax.sweep --config configs/papers/fixres.py --workdir runs/fixres --variants train224,test384 \\
        --config.data_dir=D
    python -m imagenet_jax.sweep --config configs/papers/fixres.py --workdir runs/fixres_fm \\
        --variants fmnist_train24,fmnist_test32   # the same two phases on Fashion-MNIST, minutes on a CPU

Table 2 of the paper (its repository's README, "Pretrained Networks"), ResNet-50 on ImageNet, top-1 %: trained and
tested at 224, 77.0 ("ResNet-50 Baseline"); the same net fine-tuned and tested at 384, 79.0 ("FixResNet-50").
Phase 1 (train224, fmnist_train24) trains at r_train with random-resized crops. Phase 2 (test384, fmnist_test32)
starts from phase 1 (`init_from="sweep:..."`; run alone, --config.init_from=PHASE1_WORKDIR) and fine-tunes on the
training set seen through the test-time preprocessing at r_test (resize the short side to r_test / 0.875, center
crop r_test: the paper's "test-time augmentation" for fine-tuning), then tests there. Everything but the classifier
(`head`) and the last BatchNorm of the last residual branch (ResNet-50: stage4_block3/BatchNorm_2, torchvision's
layer4[2].bn3) is frozen (config.freeze): those weights and the BatchNorm statistics of every frozen layer stay bit
for bit those of phase 1. The fine-tuned BatchNorm runs in train mode, so its statistics are re-estimated at r_test.
Phase 2's optimizer is the FixRes code's (imnet_finetune/train.py): SGD momentum 0.9, weight decay 1e-4 on every
trained array, LR 1e-3 x 8 at batch 512 (linearly scaled: 0.004 at 256), /10 after 30 epochs, 56 epochs at 384.
Differences: phase 1 is this codebase's ResNet-50 recipe (configs/imagenet.py:resnet50: 90 epochs, cosine, label
smoothing 0.1) rather than the paper's baseline training; the BatchNorm's scale and bias are fine-tuned with the
classifier, as the paper's text says ("the batch-norm preceding the global pooling"), where the FixRes code leaves
them fixed and only re-estimates that layer's statistics.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="FixRes (Touvron et al. 2019), Table 2: ResNet-50 at train 224, test 224 and 384",
    source="Touvron, Vedaldi, Douze & Jegou, NeurIPS 2019, Table 2 (github.com/facebookresearch/FixRes README)",
    metric="top1",
    protocol="ImageNet validation, one center crop at the test resolution (224; 384 after fine-tuning the classifier "
             "and the last BatchNorm at 384)",
    dataset="ImageNet",
)
VARIANTS = {"train224": 77.0, "test384": 79.0, "fmnist_train24": None, "fmnist_test32": None}
# The BatchNorm preceding the global pooling: the last one of the last residual branch.
LAST_BATCH_NORM = {"resnet50": "stage4_block3/BatchNorm_2", "resnet_small": "stage3_block1/BatchNorm_1"}
_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trained_in_fine_tuning(model: str) -> tuple[str, ...]:
    """config.freeze of phase 2: every parameter but the classifier's and the last BatchNorm's."""
    return (f"(?!head/|{LAST_BATCH_NORM[model]}/).*",)


def get_config(variant: str = "test384") -> ml_collections.ConfigDict:
    """Phase 1 ("train224", "fmnist_train24") or phase 2 ("test384", "fmnist_test32") of FixRes."""
    variant = select_variant(VARIANTS, variant, "test384")
    fashion_mnist = variant.startswith("fmnist_")
    config = load_config_file(os.path.join(_CONFIGS, "default.py" if fashion_mnist else "imagenet.py:resnet50"))
    if variant.endswith(("train224", "train24")):  # phase 1: random-resized crops at r_train
        config.image_size = 24 if fashion_mnist else 224
        config.crop_pct = 0.875
        config.eval_preprocess = "resize_center_crop"
        if fashion_mnist:
            config.train_preprocess = "random_resized_crop(0.25)|flip_lr"
        return config
    # Phase 2: the classifier and the last BatchNorm, fine-tuned at r_test on test-time preprocessed training images.
    config.image_size = 32 if fashion_mnist else 384
    config.crop_pct = 0.875
    config.train_preprocess = config.eval_preprocess = "resize_center_crop"
    config.init_from = "sweep:fmnist_train24" if fashion_mnist else "sweep:train224"
    config.freeze = trained_in_fine_tuning(config.model)
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": False}})
    config.learning_rate = 0.004  # FixRes: 8 x 1e-3 at batch 512
    config.lr_reference_batch_size = 256
    config.weight_decay = 1e-4
    config.weight_decay_multipliers = ()
    config.label_smoothing = 0.0
    config.mixup_alpha = config.cutmix_alpha = 0.0
    if fashion_mnist:
        config.num_epochs = 1.0
        config.schedule = ml_collections.ConfigDict({"name": "constant", "warmup_epochs": 0.0, "kwargs": {}})
    else:
        config.num_epochs = 56.0
        config.schedule = ml_collections.ConfigDict(
            {"name": "step", "warmup_epochs": 0.0, "kwargs": {"boundaries_epochs": (30,), "factor": 0.1}})
    return config
