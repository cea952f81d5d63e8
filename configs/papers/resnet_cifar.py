"""He et al. 2016, "Deep Residual Learning for Image Recognition", Section 4.2 (CIFAR-10): plain vs residual
networks of depth 6n+2 (20, 32, 44, 56, 110), Fig. 6 and Table 6.

    python -m imagenet_jax.sweep --config configs/papers/resnet_cifar.py --workdir runs/resnet_cifar
    python -m imagenet_jax.main --config configs/papers/resnet_cifar.py:plain56 --workdir runs/plain56

The paper's protocol: 3x3 stem with 16 filters, three stages of n basic blocks with 16/32/64 filters, global
average pooling, 10-way softmax; batch 128, SGD momentum 0.9, weight decay 1e-4, LR 0.1 divided by 10 at 32k and
48k iterations, stopped at 64k (on 45k/5k train/val: ~182 epochs; here on CIFAR-10's 50k training images, the same
iteration counts), 4-pixel padding + random 32x32 crop + horizontal flip, single 32x32 view at test. ResNet-110
starts at LR 0.01 until training error is below 80% (~400 iterations) — here a 400-step warmup. Table 6 test errors
(%): ResNet-20 8.75, 32 7.51, 44 7.17, 56 6.97, 110 6.43; the plain nets appear only in Fig. 6 (deeper plain nets
have HIGHER training and test error: the degradation problem), so they have no figure here.
Convolutions start from the paper's He et al. 2015 init (normal, variance 2/fan-in; flax's default has half that
variance, which behind BatchNorm doubles the early effective LR and measurably slowed ResNet-56's first epochs).
Shortcuts that change dimensions are the paper's option A for CIFAR (the identity, subsampled, with zero-padded
new channels: `shortcut="zero_pad"`, no parameters); the variants "resnetN_b" use option B (1x1 projections).
CIFAR-10 must be prepared in TFDS (`cifar10`). The same protocol at small scale on this repository's offline data,
with seeds and intervals, is configs/ablations/degradation.py (ABLATIONS.md).
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="ResNet (He et al. 2016), CIFAR-10: plain vs residual, depth 20-110",
    source="He et al., CVPR 2016, Section 4.2, Fig. 6 and Table 6",
    metric="top1_error",
    protocol="CIFAR-10 test set, single 32x32 view, 64k iterations at batch 128, option-A shortcuts",
    dataset="CIFAR-10",
    seeds=3,
    baseline="resnet20",
)
VARIANTS = {
    "plain20": None, "plain32": None, "plain44": None, "plain56": None,
    "resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43,
    "resnet20_b": None, "resnet56_b": None,  # option B (projection shortcuts): the paper's Table 6 used A
}
_TRAIN_IMAGES = 50_000  # CIFAR-10's training split: iteration counts of the paper become epochs here
_BATCH = 128


def _epochs(iterations: int) -> float:
    return iterations * _BATCH / _TRAIN_IMAGES


def get_config(variant: str = "resnet20") -> ml_collections.ConfigDict:
    """One network of the CIFAR-10 section: "plainN", "resnetN" (option A) or "resnetN_b" with N = 6n + 2."""
    variant = select_variant(VARIANTS, variant, "resnet20")
    depth = int(variant.removeprefix("plain").removeprefix("resnet").removesuffix("_b"))
    blocks = (depth - 2) // 6
    config = get_base_config()
    config.model = "resnet_small"
    config.model_options = model_options(
        "resnet_small", stage_sizes=(blocks,) * 3, stage_widths=(16, 32, 64), stem_width=16, stem="small",
        residual=variant.startswith("resnet"), zero_init_last_bn=False, conv_init="he_fan_in",
        shortcut="projection" if variant.endswith("_b") else "zero_pad")
    config.dataset = "cifar10"
    config.image_size = 32
    config.crop_pct = 1.0
    config.train_preprocess = "random_crop_pad(4)|flip_lr"
    config.eval_preprocess = ""
    config.normalize_mean = (125.3, 123.0, 113.9)  # CIFAR-10 training-set channel means and stds (0-255)
    config.normalize_std = (63.0, 62.1, 66.7)
    config.cache_dataset = True
    config.batch_size = _BATCH
    config.num_epochs = _epochs(64_000)
    config.learning_rate = 0.1
    config.lr_reference_batch_size = 0  # the paper's LR is for batch 128 as is
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": False}})
    config.weight_decay = 1e-4
    config.weight_decay_multipliers = ()  # the paper decays every weight, BN's included
    config.schedule = ml_collections.ConfigDict({
        "name": "step", "warmup_epochs": _epochs(400) if depth == 110 else 0.0,
        "kwargs": {"boundaries_epochs": (_epochs(32_000), _epochs(48_000)), "factor": 0.1}})
    config.label_smoothing = 0.0
    config.log_every_steps = 100
    return config
