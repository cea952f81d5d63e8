"""The degradation problem (He et al. 2016, Fig. 6) as one protocol on Fashion-MNIST: plain-20, plain-56, ResNet-20
and ResNet-56, three seeds each, same data, init, schedule and budget (ABLATIONS.md has the results).

    python -m imagenet_jax sweep --config configs/ablations/degradation.py --workdir runs/degradation
    python -m imagenet_jax sweep report runs/degradation --baseline plain20

Every variant is configs/papers/resnet_cifar.py's network and recipe (3x3 stem with 16 filters, three stages of
n basic blocks with 16/32/64 filters, option-A shortcuts (identity with zero-padded channels), He init, BN scale
1, SGD momentum 0.9, LR 0.1 divided by 10 at 50% and 75% of training, weight decay 1e-4 on every weight, batch
128, pad-4 random crop + flip) with the budget this 2-core CPU allows: the first 20,000 Fashion-MNIST training
images for 2 epochs (312 steps; the paper trains 64k iterations), the full 10,000-image test set scored every
half epoch, training error logged every 26 steps. Only the depth and the presence of shortcuts change.
The paper's CIFAR-10 test errors (Table 6: ResNet-20 8.75, ResNet-56 6.97; the plain nets only in Fig. 6) appear in
the report's column labelled CIFAR-10, beside ours, never subtracted from a Fashion-MNIST error.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="Degradation: plain vs residual, 20 vs 56 layers (He et al. 2016, Fig. 6), on Fashion-MNIST",
    source="He et al., CVPR 2016, Section 4.2, Fig. 6 and Table 6",
    metric="top1_error",
    protocol="CIFAR-10 test set, 64k iterations at batch 128 (Table 6; the plain nets only in Fig. 6)",
    dataset="CIFAR-10",
    seeds=3,
    baseline="plain20",
)
VARIANTS = {"plain20": None, "plain56": None, "resnet20": 8.75, "resnet56": 6.97}
_TRAIN_IMAGES = 20_000
_EPOCHS = 2.0


def get_config(variant: str = "plain20") -> ml_collections.ConfigDict:
    """One of the four networks under the shared reduced-budget protocol."""
    variant = select_variant(VARIANTS, variant, "plain20")
    config = load_config_file(f"{_PAPER_CONFIG}:{variant}")
    config.dataset = "fashion_mnist"
    config.image_size = 28
    config.normalize_mean = (72.94,)  # Fashion-MNIST training-set mean and std (0-255)
    config.normalize_std = (90.02,)
    config.train_split = f"train[:{_TRAIN_IMAGES}]"
    config.num_epochs = _EPOCHS
    config.schedule.kwargs.boundaries_epochs = (0.5 * _EPOCHS, 0.75 * _EPOCHS)
    steps_per_epoch = _TRAIN_IMAGES // config.batch_size
    config.eval_every_steps = steps_per_epoch // 2
    config.log_every_steps = steps_per_epoch // 6
    config.write_report = False
    return config


_PAPER_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "papers", "resnet_cifar.py")
