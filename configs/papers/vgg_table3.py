"""Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition", Table 3:
configurations A-E at a single test scale.

    python -m imagenet_jax.sweep --config configs/papers/vgg_table3.py --workdir runs/vgg --config.data_dir=D
    python -m imagenet_jax.main --config configs/papers/vgg_table3.py:d_jitter --config.init_from=RUNS/d_384 ...

Table 3 (top-1 / top-5 validation error, %, test scale Q): A (S=256, Q=256) 29.6/10.4; A-LRN 29.7/10.5; B 28.7/9.9;
C 28.1/9.4 (S=256), 28.1/9.3 (S=384), 27.3/8.8 (S~[256,512], Q=384); D 27.0/8.8, 26.8/8.7, 25.6/8.1; E 27.3/9.0,
26.9/8.7, 25.5/8.0. Protocol (Section 3.1): batch 256, SGD momentum 0.9, weight decay 5e-4, dropout 0.5 on the first
two FC layers, LR 0.01 divided by 10 three times when the validation accuracy stopped improving, 370k iterations
(74 epochs); each training image is rescaled isotropically to short side S (fixed 256 or 384, or per image
~U[256, 512]: scale jitter), then a random 224 crop, a flip and AlexNet's RGB colour shift (op pca_lighting(0.1):
Krizhevsky et al.'s PCA augmentation with the ImageNet eigen-decomposition of fb.resnet.torch). A is trained from
random initialisation; B-E start from a trained A: its first four convolutional layers and its three FC layers,
the intermediate layers random (config.init_from_layers; A's first four are conv1_1, conv2_1, conv3_1, conv3_2,
loaded into the layers of the same name and shape in the deeper net: block1_conv1, block2_conv1, block3_conv1,
block3_conv2; the deeper net's own first four, conv1_1, conv1_2, conv2_1, conv2_2, have no counterpart in A of
the same shape). The S=384 nets start from the S=256 net (every layer) with LR 0.001, the scale-jittered nets
from the S=384 net. In a sweep these run in order and `init_from="sweep:NAME"` is the finished variant's workdir;
run alone, pass --config.init_from=WORKDIR_OF_NAME. Testing is the paper's dense evaluation (Sec. 3.2;
config.main_eval, the number the sweep reports): the FC layers applied as convolutions over the short-side-Q
image and its mirror, the class-score maps averaged spatially and the two softmaxes averaged.
Differences: the LR is divided by 10 (at most 3 times) after 5 evaluations (epochs) without a 0.1-point gain in
the main eval set's top-1 (config.lr_plateau; the paper publishes no patience; like the paper, the drops watch
the reported validation set: --eval minival=classification,holdout=N --config.lr_plateau.metric=minival/top1
watches a held-out part of train instead); the dense evaluation sees the central Q x Q square of the short-side-Q
image rather than the whole rectangle (one shape per batch; imagenet_jax/evaluators/multicrop.py).
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options, vgg_lr_plateau
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="VGG (Simonyan & Zisserman 2015), Table 3: single test scale",
    source="Simonyan & Zisserman, ICLR 2015, Table 3",
    metric="top1_error",
    protocol="ImageNet validation, single-scale dense evaluation (FC layers as convolutions over the image at test "
             "scale Q and its mirror; Q = S, 384 for S ~ [256, 512]), 74 epochs",
    dataset="ImageNet",
)
VARIANTS = {
    "a": 29.6, "a_lrn": 29.7, "b": 28.7,
    "c_256": 28.1, "c_384": 28.1, "c_jitter": 27.3,
    "d_256": 27.0, "d_384": 26.8, "d_jitter": 25.6,
    "e_256": 27.3, "e_384": 26.9, "e_jitter": 25.5,
}
_MODELS = {"a": "vgg_a", "a_lrn": "vgg_a_lrn", "b": "vgg_b", "c": "vgg_c", "d": "vgg_d", "e": "vgg_e"}
# Sec. 3.1: the deeper nets start from net A's first four convolutional layers and its three FC layers.
NET_A_LAYERS = ("block1_conv1/.*", "block2_conv1/.*", "block3_conv1/.*", "block3_conv2/.*",
                "fc1/.*", "fc2/.*", "head/.*")


def get_config(variant: str = "d_jitter") -> ml_collections.ConfigDict:
    """A Table 3 row: "a", "a_lrn", "b", or "{c,d,e}_{256,384,jitter}"."""
    variant = select_variant(VARIANTS, variant, "d_jitter")
    net, _, scale = variant.partition("_") if variant != "a_lrn" else (variant, "", "")
    scale = scale or "256"
    config = get_base_config()
    config.model = _MODELS[net]
    config.model_options = model_options(config.model, dropout_rate=0.5)
    train_scale = {"256": (256, 256), "384": (384, 384), "jitter": (256, 512)}[scale]
    test_scale = 384 if scale == "jitter" else train_scale[0]
    config.train_preprocess = f"scale_jitter_crop({train_scale[0]}, {train_scale[1]})|flip_lr|pca_lighting(0.1)"
    # The reported eval: dense over the short-side-Q image and its mirror. crop_pct: a center-crop eval (config.evals
    # type classification) sees the central 224 of the same image.
    config.main_eval = ml_collections.ConfigDict({"type": "multicrop", "mode": "dense", "resize": test_scale})
    config.crop_pct = 224 / test_scale
    config.batch_size = 256
    config.num_epochs = 74.0
    config.learning_rate = 0.01 if scale == "256" else 0.001  # fine-tuned from a trained net at S=384 / jitter
    config.lr_reference_batch_size = 256
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": False}})
    config.weight_decay = 5e-4
    config.weight_decay_multipliers = ()
    config.schedule = ml_collections.ConfigDict({"name": "constant", "warmup_epochs": 0.0, "kwargs": {}})
    config.lr_plateau = vgg_lr_plateau()  # /10 when the main eval set's top-1 stops improving, at most 3 times
    config.label_smoothing = 0.0
    config.init_from = {"256": "" if net in ("a", "a_lrn") else "sweep:a", "384": f"sweep:{net}_256",
                        "jitter": f"sweep:{net}_384"}[scale]
    config.init_from_layers = NET_A_LAYERS if config.init_from == "sweep:a" else ()
    return config
