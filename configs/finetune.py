r"""Fine-tuning pretrained weights on your own data: the default model's recipe with a lower learning rate, a short
cosine schedule without warmup, and config.init_from (required: the pretrained weights) with a new head.

Fine-tune a torchvision ResNet-50 on an image folder (ROOT/train/<class>/*.jpg, ROOT/val/<class>/*.jpg):

    python -c "import torch, torchvision; \
torch.save(torchvision.models.resnet50(weights='DEFAULT').state_dict(), 'r50.pt')"
    python -c "import torch; from imagenet_jax.convert import from_torchvision, save_converted; \
save_converted(from_torchvision(torch.load('r50.pt'), 'resnet50'), 'r50.msgpack', 'resnet50')"
    python -m imagenet_jax.main --config configs/finetune.py:resnet50 --workdir runs/pets \
        --config.init_from=r50.msgpack --config.dataset=folder:/data/pets

`finetune.py:MODEL` is the recipe for a zoo model at 224 px with ImageNet normalization and augmentation (batch
64); plain `configs/finetune.py` keeps the default's resnet_small on 28 px Fashion-MNIST-like data:

    python -m imagenet_jax.main --config configs/finetune.py --workdir runs/ft --config.init_from=runs/pretrained

Keras weights: `save_converted(from_keras(keras_model, 'resnet50'), 'r50.msgpack', 'resnet50',
keras_model_options(keras_model, 'resnet50'))` and pass those options as --config.model_options, and
`keras_input_normalization(keras_model, 'resnet50')` as --config.normalize_mean/normalize_std (Keras' own
preprocess_input: ResNet50's "caffe" mean here, its BGR order already folded into the first conv by from_keras;
see colab/finetune.ipynb).
Every array whose path and shape match is loaded; the classifier of another class count is re-initialized.

Variants: --config.linear_probe=True (train only the classifier; BatchNorm frozen in inference mode, a higher
learning rate such as 0.1 suits it), --config.freeze='("stem_.*", "stage1_.*")' (freeze early layers), or
discriminative rates --config.lr_multipliers='(("stem_.*|stage1_.*", 0.1), ("stage2_.*", 0.3))'.
Measured (RESULTS.md, "Transfer learning", 2026-12-01, one seed): resnet_small pretrained on Fashion-MNIST
classes 0-7, then 40 steps of batch 50 on 200 images of classes 8-9, test top-1 on their 2,000 test images:
this config as shipped (LR 0.01 @256) 97.40%, below training from scratch (configs/default.py, LR 0.1 @256)
98.70%; fine-tuning at LR 0.1 @256 99.15%; linear probe at LR 0.1 @256 95.30%. So at this budget the shipped LR
does not beat scratch; --config.learning_rate=0.1 does, by 0.45 points on one seed.
"""

import os

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.files import load_config_file

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.py")


def get_config(model: str = "") -> ml_collections.ConfigDict:
    """10x lower peak LR, 2 epochs of cosine decay, no warmup; `model`: a zoo model at 224 px, else the default's."""
    config = load_config_file(_DEFAULT)
    if model:
        base = get_base_config()
        config.model = model
        config.model_options = ml_collections.ConfigDict()
        config.dataset = "imagenette"  # replace with --config.dataset=folder:/your/images
        config.cache_dataset = False
        for key in ("image_size", "crop_pct", "train_preprocess", "eval_preprocess", "normalize_mean",
                    "normalize_std"):
            config[key] = base[key]  # ImageNet's: what the pretrained weights saw
        config.batch_size = 64
        config.log_every_steps = 20
    config.init_from = ""  # required: a converted-weights file or a workdir of ours (--config.init_from=PATH)
    config.learning_rate = 0.01
    config.num_epochs = 2.0
    config.schedule = ml_collections.ConfigDict({"name": "cosine", "warmup_epochs": 0.0, "kwargs": {}})
    config.weight_decay = 1e-4
    return config
