"""The embedded default: a small ResNet on Fashion-MNIST, tuned for time-to-accuracy on a 2-core CPU.

    python -m imagenet_jax.main --config configs/default.py --workdir /tmp/fashion_mnist

Measured here (BENCHMARKS.md, issue 28's "second round" and "third round", 2026-12-07,
`python benchmarks/time_to_accuracy.py`; tcmalloc preloaded by the entry point, the batch split over one host
device per core, config.cpu_devices): on a 2-core AMD EPYC VM 91% top-1 on all 10,000 test images after 153-163 s,
92.58% after the 4 epochs, 200-215 s for the whole job (PyTorch on the same network and recipe, same runs: 91%
after 97-102 s); on a 2-core Intel Xeon VM 187 s, 92.38%, 244 s (PyTorch 107 s).
Fashion-MNIST is prepared offline from Debian's dataset-fashion-mnist on first use.
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options


def get_config() -> ml_collections.ConfigDict:
    """Fashion-MNIST, resnet_small (3x3 stem + 2x2 pool, 3 stages of one basic block), SGD, cosine."""
    config = get_base_config()
    config.model = "resnet_small"
    config.model_options = model_options(
        "resnet_small", stage_sizes=(1, 1, 1), stage_widths=(32, 64, 128), stem_width=32, stem="small_pool")
    config.dataset = "fashion_mnist"
    config.image_size = 28
    config.crop_pct = 1.0
    config.train_preprocess = "flip_lr"  # random crops cost more epochs than they gain in a 4-epoch budget
    config.eval_preprocess = ""
    config.normalize_mean = (72.94,)  # Fashion-MNIST training-set pixel mean and std.
    config.normalize_std = (90.02,)
    config.cache_dataset = True
    config.batch_size = 256
    config.num_epochs = 4.0
    config.learning_rate = 0.1
    config.schedule.warmup_epochs = 0.5
    config.weight_decay = 5e-4
    config.label_smoothing = 0.0
    config.log_every_steps = 50
    # The main evaluation also writes per_class.json and calibration.json (the report's per-class table, confusion
    # matrix and reliability diagram) from its own pass: no extra data read, no extra metrics lines.
    config.main_eval = ml_collections.ConfigDict({"type": "classification", "write": ("per_class", "calibration")})
    return config
