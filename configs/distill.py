"""Knowledge distillation on Fashion-MNIST: a narrow resnet_small student (8-16-32 channels, 12x fewer parameters)
learns from the default config's resnet_small (32-64-128) trained first.

    python -m imagenet_jax.main --config configs/default.py --workdir runs/teacher
    python -m imagenet_jax.main --config configs/distill.py --workdir runs/student --config.distill.teacher=runs/teacher

The teacher may also be a converted-weights file (imagenet_jax.convert.save_converted) of any zoo model; set
--config.distill.teacher_model and its options (every option of resnet_small is a key here). The same student
without a teacher: --config.distill.teacher=''. Measured (RESULTS.md, "Knowledge distillation"): student with and
without the teacher at the same budget.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.recipes import model_options

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.py")


def get_config() -> ml_collections.ConfigDict:
    """The default recipe with a narrow student; the teacher is the default model (T=4, alpha=0.9)."""
    config = load_config_file(_DEFAULT)
    teacher_options = config.model_options
    config.model_options = model_options(
        "resnet_small", stage_sizes=(1, 1, 1), stage_widths=(8, 16, 32), stem_width=8, stem="small_pool")
    config.distill.teacher = ""  # required for distillation: --config.distill.teacher=WORKDIR_OR_FILE
    config.distill.teacher_model = "resnet_small"
    config.distill.teacher_model_options = teacher_options
    config.distill.temperature = 4.0
    config.distill.alpha = 0.9
    return config
