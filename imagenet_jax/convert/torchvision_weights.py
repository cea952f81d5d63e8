"""torchvision state dicts -> Flax variables of the same architecture in this zoo.

Convolutions go OIHW -> HWIO (a depthwise (C, 1, kh, kw) kernel becomes (kh, kw, 1, C), flax's layout for
feature_group_count=C), linear layers (out, in) -> (in, out), BatchNorm and LayerNorm weights -> `scale`; the first
linear layer after a flatten is re-ordered from PyTorch's channel-major (C, H, W) to our NHWC (H, W, C) flattening.
ConvNeXt's per-block `layer_scale` (C, 1, 1) becomes the block's `layer_scale` (C,). DenseNet's
`features.denseblockB.denselayerL.X` becomes `denseblockB_denselayerL/X`, its `classifier` our `head`.
MobileNetV2/V3's `features.I` block entries become `blockI/{expand,depthwise,project}_{conv,bn}` and `blockI/se`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from imagenet_jax.convert.tree import Variables, check_matches_model, put, to_numpy
from imagenet_jax.models.mobilenet import ARCHITECTURES as MOBILENETS
from imagenet_jax.models.mobilenet import torchvision_block_layers
from imagenet_jax.models.vgg import CONFIGURATIONS

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d")
VGG_LETTERS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"} | {f"vgg_{c}": c.upper() for c in "abcde"}
VGG_LETTERS["vgg_a_lrn"] = "A"
CONVNEXTS = ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large")
DENSENETS = ("densenet121", "densenet169", "densenet201")

_ALEXNET_MODULES = {
    "features.0": "conv1",
    "features.3": "conv2",
    "features.6": "conv3",
    "features.8": "conv4",
    "features.10": "conv5",
    "classifier.1": "fc6",
    "classifier.4": "fc7",
    "classifier.6": "head",
}
# torchvision's CNBlock.block indices (its Permute and GELU layers hold no weights) -> our ConvNeXtBlock's names.
_CONVNEXT_BLOCK_LAYERS = {"0": "depthwise_conv", "2": "norm", "3": "expand", "5": "project"}
_GOOGLENET_BRANCHES = {
    "branch1": "branch1x1",
    "branch2.0": "branch3x3_reduce",
    "branch2.1": "branch3x3",
    "branch3.0": "branch5x5_reduce",
    "branch3.1": "branch5x5",
    "branch4.1": "pool_proj",
}


def from_torchvision(state_dict: Mapping[str, Any], name: str, **options: Any) -> Variables:
    """Converts torchvision model `name`'s state dict to `{"params", "batch_stats"}` of `create(name, ...)`.

    Models without BatchNorm (ConvNeXt) get `{"params"}` only.
    `num_classes` and, for GoogLeNet/Inception-v3, `aux_logits` are read from the weights; other `options`
    are passed to `create` for the shape check. torchvision's pretrained GoogLeNet and Inception-v3 weights
    expect `create(..., transform_input=True)`, as torchvision sets it when it loads them.
    """
    rename, flattened_inputs = _module_mapping(name, options)
    variables: Variables = {}
    for key, value in state_dict.items():
        module, _, kind = key.rpartition(".")
        if kind == "num_batches_tracked":
            continue
        path = rename(module)
        array = to_numpy(value)
        if kind == "running_mean":
            put(variables, "batch_stats", path, "mean", array)
        elif kind == "running_var":
            put(variables, "batch_stats", path, "var", array)
        elif kind == "bias":
            put(variables, "params", path, "bias", array)
        elif kind == "weight" and array.ndim == 4:
            put(variables, "params", path, "kernel", array.transpose(2, 3, 1, 0))
        elif kind == "weight" and array.ndim == 2:
            kernel = _nchw_flatten_to_nhwc(array, flattened_inputs[module]) if module in flattened_inputs else array.T
            put(variables, "params", path, "kernel", kernel)
        elif kind == "weight" and array.ndim == 1:
            put(variables, "params", path, "scale", array)
        elif kind == "layer_scale" and array.ndim == 3:
            put(variables, "params", path, "layer_scale", array.reshape(-1))
        else:
            raise ValueError(f"unexpected torchvision weight {key} of shape {array.shape}")

    create_options = {"num_classes": variables["params"]["head"]["kernel"].shape[1], **options}
    if name in ("googlenet", "inception_v3"):
        create_options.setdefault("aux_logits", any(k in variables["params"] for k in ("aux1", "AuxLogits")))
    check_matches_model(variables, name, **create_options)
    return variables


def _nchw_flatten_to_nhwc(weight: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = chw
    return weight.reshape(-1, channels, height, width).transpose(2, 3, 1, 0).reshape(height * width * channels, -1)


def _module_mapping(
    name: str, options: Mapping[str, Any]
) -> tuple[Callable[[str], tuple[str, ...]], dict[str, tuple[int, int, int]]]:
    """(torch module path -> flax module path, {torch linear layer fed by a flatten: its (C, H, W) input})."""
    if name in RESNETS:
        return _resnet_module, {}
    if name == "alexnet":
        return _table_lookup(_ALEXNET_MODULES, name), {"classifier.1": (256, 6, 6)}
    if name.removesuffix("_bn") in VGG_LETTERS:
        letter = VGG_LETTERS[name.removesuffix("_bn")]
        batch_norm = options.get("batch_norm", name.endswith("_bn"))
        return _table_lookup(_vgg_modules(letter, batch_norm), name), {"classifier.0": (512, 7, 7)}
    if name == "googlenet":
        return _googlenet_module, {"aux1.fc1": (128, 4, 4), "aux2.fc1": (128, 4, 4)}
    if name in CONVNEXTS:
        return _convnext_module, {}
    if name in DENSENETS:
        return _densenet_module, {}
    if name in MOBILENETS:
        return _mobilenet_module(name), {}
    if name == "inception_v3":
        # Our names mirror torchvision's; only the classifiers are called `head`.
        return lambda module: tuple(re.sub(r"(^|\.)fc$", r"\1head", module).split(".")), {}
    raise ValueError(f"no torchvision mapping for model {name!r}")


def _table_lookup(table: Mapping[str, str], name: str) -> Callable[[str], tuple[str, ...]]:
    def rename(module: str) -> tuple[str, ...]:
        if module not in table:
            raise ValueError(f"unexpected module {module!r} in a torchvision {name} state dict")
        return (table[module],)

    return rename


def _resnet_module(module: str) -> tuple[str, ...]:
    top_level = {"conv1": "stem_conv", "bn1": "stem_bn", "fc": "head"}
    if module in top_level:
        return (top_level[module],)
    match = re.fullmatch(r"layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.0|downsample\.1)", module)
    if not match:
        raise ValueError(f"unexpected module {module!r} in a torchvision ResNet state dict")
    stage, index, layer = match.groups()
    block = f"stage{stage}_block{int(index) + 1}"
    # Our blocks name their layers by creation order: Conv_0/BatchNorm_0 are torchvision's conv1/bn1.
    renamed = {"downsample.0": "shortcut_conv", "downsample.1": "shortcut_bn"}.get(layer)
    if renamed is None:
        renamed = f"Conv_{int(layer[-1]) - 1}" if layer.startswith("conv") else f"BatchNorm_{int(layer[-1]) - 1}"
    return (block, renamed)


def _vgg_modules(letter: str, batch_norm: bool) -> dict[str, str]:
    """torchvision's `features.N` indices for a VGG configuration (conv[, bn], relu per layer; pool per stage)."""
    table = {"classifier.0": "fc1", "classifier.3": "fc2", "classifier.6": "head"}
    index = 0
    for stage, (_, kernels) in enumerate(CONFIGURATIONS[letter], start=1):
        for layer in range(1, len(kernels) + 1):
            table[f"features.{index}"] = f"block{stage}_conv{layer}"
            if batch_norm:
                table[f"features.{index + 1}"] = f"block{stage}_bn{layer}"
            index += 3 if batch_norm else 2
        index += 1  # max-pool
    return table


def _googlenet_module(module: str) -> tuple[str, ...]:
    parts = module.split(".")
    if parts == ["fc"]:
        return ("head",)
    if parts[0] in ("aux1", "aux2"):
        return (parts[0], "head") if parts[1:] == ["fc2"] else tuple(parts)
    if parts[0].startswith("inception"):
        branch = ".".join(parts[1:-1])
        if branch not in _GOOGLENET_BRANCHES:
            raise ValueError(f"unexpected module {module!r} in a torchvision GoogLeNet state dict")
        return (parts[0], _GOOGLENET_BRANCHES[branch], parts[-1])
    return tuple(parts)


def _convnext_module(module: str) -> tuple[str, ...]:
    """torchvision's ConvNeXt `features.K...`: K = 0 the stem, odd K the stages, even K the downsampling before one."""
    fixed = {"features.0.0": "stem_conv", "features.0.1": "stem_norm", "classifier.0": "head_norm",
             "classifier.2": "head"}
    if module in fixed:
        return (fixed[module],)
    match = re.fullmatch(r"features\.(\d+)\.(\d+)(?:\.block\.(\d+))?", module)
    if match:
        index, position, layer = int(match[1]), int(match[2]), match[3]
        if index % 2 == 1:  # a stage's blocks; the block itself holds `layer_scale`
            block = f"stage{(index + 1) // 2}_block{position + 1}"
            if layer is None:
                return (block,)
            if layer in _CONVNEXT_BLOCK_LAYERS:
                return (block, _CONVNEXT_BLOCK_LAYERS[layer])
        elif index > 0 and layer is None and position in (0, 1):  # LayerNorm2d, then the 2x2 stride-2 conv
            return (f"stage{index // 2 + 1}_downsample_{('norm', 'conv')[position]}",)
    raise ValueError(f"unexpected module {module!r} in a torchvision ConvNeXt state dict")


def _densenet_module(module: str) -> tuple[str, ...]:
    """torchvision's DenseNet `features.*` and `classifier` -> conv0/norm0, dense layers, transitions, norm5, head."""
    if module == "classifier":
        return ("head",)
    match = re.fullmatch(r"features\.(conv0|norm0|norm5)", module)
    if match:
        return (match[1],)
    match = re.fullmatch(r"features\.(denseblock\d+)\.(denselayer\d+)\.(norm1|conv1|norm2|conv2)", module)
    if match:
        return (f"{match[1]}_{match[2]}", match[3])
    match = re.fullmatch(r"features\.(transition\d+)\.(norm|conv)", module)
    if match:
        return (match[1], match[2])
    raise ValueError(f"unexpected module {module!r} in a torchvision DenseNet state dict")


def _mobilenet_module(name: str) -> Callable[[str], tuple[str, ...]]:
    """torchvision's MobileNetV2/V3 `features.*` and `classifier.*` -> stem, blockI's layers, last conv, heads."""
    architecture = MOBILENETS[name]
    last = len(architecture.blocks) + 1
    fixed = {"features.0.0": ("stem_conv",), "features.0.1": ("stem_bn",), f"features.{last}.0": ("last_conv",),
             f"features.{last}.1": ("last_bn",)}
    if architecture.v2:
        fixed["classifier.1"] = ("head",)
    else:
        fixed |= {"classifier.0": ("pre_head",), "classifier.3": ("head",)}
    block_layers = [torchvision_block_layers(block, architecture.v2) for block in architecture.blocks]

    def rename(module: str) -> tuple[str, ...]:
        if module in fixed:
            return fixed[module]
        match = re.fullmatch(r"features\.(\d+)\.(?:conv|block)\.(\d+)(?:\.(\d+|fc1|fc2))?", module)
        if match and 1 <= int(match[1]) < last and int(match[2]) < len(block_layers[int(match[1]) - 1]):
            layer, part = block_layers[int(match[1]) - 1][int(match[2])], match[3]
            if layer == "se" and part in ("fc1", "fc2"):
                return (f"block{match[1]}", "se", part)
            if layer in ("expand", "depthwise", "project") and part in ("0", "1"):
                return (f"block{match[1]}", f"{layer}_{('conv', 'bn')[int(part)]}")
            if layer in ("project_conv", "project_bn") and part is None:
                return (f"block{match[1]}", layer)
        raise ValueError(f"unexpected module {module!r} in a torchvision {name} state dict")

    return rename
