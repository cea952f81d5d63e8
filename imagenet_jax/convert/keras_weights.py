"""keras.applications models (ResNet50/101/152, ResNet50V2/101V2/152V2, VGG16/19, InceptionV3) -> Flax variables.

Keras kernels are already HWIO / (in, out) and its Flatten is NHWC, so weights copy as they are. Some Keras
architectures differ from torchvision's in ways that are options of our models: `keras_model_options` gives
the `create()` options under which the converted variables reproduce the Keras model.

Each keras.applications model expects its own `preprocess_input` mode. The converted model takes RGB pixels in
[0, 255] normalized by the config's `normalize_mean`/`normalize_std`, as every model here does:
`keras_input_normalization` gives those two keys, and `from_keras` folds the "caffe" mode's RGB->BGR swap into
the first convolution (its input channels reversed). Both are exact up to float32 round-off. The mean is not
folded into the first convolution's bias, which would be wrong at the borders: Keras zero-pads the
mean-subtracted image, so a padded pixel contributes 0, not -mean.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from imagenet_jax.convert.tree import Variables, check_matches_model, put, to_numpy
from imagenet_jax.models.resnet import KERAS_OPTIONS

_RESNETS = ("resnet50", "resnet101", "resnet152")
_VGGS = ("vgg16", "vgg19")

# keras.applications' preprocess_input mode per converted architecture (keras/src/applications/*.py): "caffe"
# (RGB->BGR, minus the ImageNet mean [103.939, 116.779, 123.68] in BGR order, no scaling) for ResNet50/101/152 and
# VGG16/19; "tf" (x / 127.5 - 1) for ResNetV2, InceptionV3 (and Xception, MobileNet); "torch" (x / 255, then the
# ImageNet mean/std) for DenseNet, which has no mapping here yet.
PREPROCESSING_MODES = {"resnet_v1": "caffe", "resnet_v2": "tf", "vgg": "caffe", "inception_v3": "tf"}
# Each mode as (normalize_mean, normalize_std) of RGB pixels in [0, 255]: (x - mean) / std.
INPUT_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "caffe": ((123.68, 116.779, 103.939), (1.0, 1.0, 1.0)),  # the BGR mean, in RGB order; BGR itself: from_keras
    "tf": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    "torch": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}
# The first convolution of each architecture, whose input channels from_keras reverses for a "caffe" model.
_FIRST_CONV = {"resnet_v1": "conv1_conv", "resnet_v2": "conv1_conv", "vgg": "block1_conv1", "inception_v3": "conv2d"}

# Keras' InceptionV3 names its conv/BN layers only by creation order (conv2d, conv2d_1, ...); this is that order
# in our (torchvision's) module names.
_INCEPTION_A = ("branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")
_INCEPTION_C = ("branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3") + tuple(
    f"branch7x7dbl_{index}" for index in range(1, 6)
)
_INCEPTION_E = (
    "branch1x1",
    "branch3x3_1",
    "branch3x3_2a",
    "branch3x3_2b",
    "branch3x3dbl_1",
    "branch3x3dbl_2",
    "branch3x3dbl_3a",
    "branch3x3dbl_3b",
)
INCEPTION_V3_CONV_ORDER: tuple[tuple[str, ...], ...] = (
    tuple((stem,) for stem in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"))
    + tuple(
        (block, branch) for block in ("Mixed_5b", "Mixed_5c", "Mixed_5d") for branch in (*_INCEPTION_A, "branch_pool")
    )
    + tuple(("Mixed_6a", branch) for branch in ("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"))
    + tuple(
        (block, branch)
        for block in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")
        for branch in (*_INCEPTION_C, "branch_pool")
    )
    + tuple(
        ("Mixed_7a", branch)
        for branch in ("branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4")
    )
    + tuple((block, branch) for block in ("Mixed_7b", "Mixed_7c") for branch in (*_INCEPTION_E, "branch_pool"))
)


def keras_model_options(keras_model: Any, name: str) -> dict[str, Any]:
    """The `create(name, **options)` options whose model computes what `keras_model` computes."""
    num_classes = int(_layer_weights(keras_model.get_layer("predictions"))["kernel"].shape[1])
    if name in _RESNETS:
        return {"num_classes": num_classes, **KERAS_OPTIONS[_resnet_version(keras_model)]}
    if name in _VGGS:
        return {"num_classes": num_classes}
    if name == "inception_v3":
        # Keras has no auxiliary head, and its "same" average pooling ignores the padded border.
        return {"num_classes": num_classes, "aux_logits": False, "avg_pool_count_include_pad": False}
    raise ValueError(f"no Keras mapping for model {name!r}; supported: {', '.join(_RESNETS + _VGGS)}, inception_v3")


def keras_preprocessing(keras_model: Any, name: str) -> str:
    """The `preprocess_input` mode ("caffe", "tf" or "torch") that `keras_model`, converted to `name`, expects."""
    keras_model_options(keras_model, name)  # an unsupported name: its ValueError
    return PREPROCESSING_MODES[_architecture(keras_model, name)]


def keras_input_normalization(keras_model: Any, name: str) -> dict[str, tuple[float, ...]]:
    """`{"normalize_mean", "normalize_std"}` config values under which `from_keras`' model sees, from RGB pixels,
    what `keras_model` sees from its own `preprocess_input`."""
    mean, std = INPUT_NORMALIZATION[keras_preprocessing(keras_model, name)]
    return {"normalize_mean": mean, "normalize_std": std}


def from_keras(keras_model: Any, name: str) -> Variables:
    """Converts a keras.applications model to `{"params", "batch_stats"}` for `create(name, **keras_model_options)`;
    the result takes RGB input (a "caffe" model's BGR order is folded into its first convolution)."""
    options = keras_model_options(keras_model, name)
    if name in _RESNETS:
        version = _resnet_version(keras_model)
        paths = {layer.name: _resnet_path(layer.name, version) for layer in _weighted_layers(keras_model)}
    elif name in _VGGS:
        # Our VGG layers carry Keras' names (block1_conv1, fc1, ...); only the classifier is `head`.
        renamed = {"predictions": "head"}
        paths = {layer.name: (renamed.get(layer.name, layer.name),) for layer in _weighted_layers(keras_model)}
    else:
        paths = _inception_v3_paths(keras_model)
    variables: Variables = {}
    for layer in _weighted_layers(keras_model):
        _copy_layer(variables, layer, paths[layer.name])
    architecture = _architecture(keras_model, name)
    if PREPROCESSING_MODES[architecture] == "caffe":
        first = paths[_FIRST_CONV[architecture]]
        kernel = _get(variables["params"], first)["kernel"]
        _get(variables["params"], first)["kernel"] = np.ascontiguousarray(kernel[:, :, ::-1, :])  # HWIO: I = BGR
    check_matches_model(variables, name, **options)
    return variables


def _architecture(keras_model: Any, name: str) -> str:
    if name in _RESNETS:
        return f"resnet_{_resnet_version(keras_model)}"
    return "vgg" if name in _VGGS else name


def _get(tree: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        tree = tree[key]
    return tree


def _weighted_layers(keras_model: Any) -> list[Any]:
    return [layer for layer in keras_model.layers if type(layer).__name__ in ("Conv2D", "BatchNormalization", "Dense")]


def _layer_weights(layer: Any) -> dict[str, np.ndarray]:
    # Keras 3 variables carry their short name ("kernel", "gamma", "moving_mean", ...).
    return {variable.name.split("/")[-1].split(":")[0]: to_numpy(variable) for variable in layer.weights}


def _copy_layer(variables: Variables, layer: Any, path: tuple[str, ...]) -> None:
    weights = _layer_weights(layer)
    if type(layer).__name__ == "BatchNormalization":
        features = weights["moving_mean"].shape[0]
        # InceptionV3's BatchNorms have scale=False: the equivalent scale is 1.
        put(variables, "params", path, "scale", weights.get("gamma", np.ones(features, np.float32)))
        put(variables, "params", path, "bias", weights.get("beta", np.zeros(features, np.float32)))
        put(variables, "batch_stats", path, "mean", weights["moving_mean"])
        put(variables, "batch_stats", path, "var", weights["moving_variance"])
        return
    put(variables, "params", path, "kernel", weights["kernel"])
    if "bias" in weights:
        put(variables, "params", path, "bias", weights["bias"])


def _resnet_version(keras_model: Any) -> str:
    return "v2" if any(layer.name == "post_bn" for layer in keras_model.layers) else "v1"


def _resnet_path(layer_name: str, version: str) -> tuple[str, ...]:
    top_level = {"conv1_conv": "stem_conv", "conv1_bn": "stem_bn", "post_bn": "final_bn", "predictions": "head"}
    if layer_name in top_level:
        return (top_level[layer_name],)
    match = re.fullmatch(r"conv(\d)_block(\d+)_(preact_bn|\d_conv|\d_bn)", layer_name)
    if not match:
        raise ValueError(f"unexpected layer {layer_name!r} in a Keras ResNet")
    stage, index, layer = match.groups()
    block = f"stage{int(stage) - 1}_block{index}"
    if layer == "preact_bn":
        return (block, "BatchNorm_0")
    position, kind = int(layer[0]), layer[2:]
    if position == 0:
        return (block, "shortcut_conv" if kind == "conv" else "shortcut_bn")
    if kind == "conv":
        return (block, f"Conv_{position - 1}")
    # v2's pre-activation BatchNorm is the block's first, shifting the others by one.
    return (block, f"BatchNorm_{position if version == 'v2' else position - 1}")


def _creation_index(layer_name: str, prefix: str) -> int:
    match = re.fullmatch(rf"{prefix}(?:_(\d+))?", layer_name)
    if not match:
        raise ValueError(f"unexpected layer {layer_name!r} in a Keras InceptionV3 (renamed layers are not supported)")
    return int(match.group(1) or 0)


def _inception_v3_paths(keras_model: Any) -> dict[str, tuple[str, ...]]:
    layers = _weighted_layers(keras_model)
    convolutions = sorted(
        (layer for layer in layers if type(layer).__name__ == "Conv2D"),
        key=lambda layer: _creation_index(layer.name, "conv2d"),
    )
    norms = sorted(
        (layer for layer in layers if type(layer).__name__ == "BatchNormalization"),
        key=lambda layer: _creation_index(layer.name, "batch_normalization"),
    )
    expected = len(INCEPTION_V3_CONV_ORDER)
    if not len(convolutions) == len(norms) == expected:
        raise ValueError(f"expected {expected} conv+BN pairs, found {len(convolutions)} convs, {len(norms)} BNs")
    paths = {"predictions": ("head",)}
    for conv, norm, module in zip(convolutions, norms, INCEPTION_V3_CONV_ORDER, strict=True):
        paths[conv.name] = (*module, "conv")
        paths[norm.name] = (*module, "bn")
    return paths
