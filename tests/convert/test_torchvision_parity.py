"""Converted torchvision models compute the same logits as torchvision (random weights, random BN statistics)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from parity_report import TRAIN_MODE_TOLERANCE, check_and_record

from imagenet_jax import models
from imagenet_jax.convert import from_torchvision

torch = pytest.importorskip("torch", reason="install the parity extra: pip install torch==2.14.1 torchvision==0.29.1")
torchvision = pytest.importorskip(
    "torchvision", reason="install the parity extra: pip install torch==2.14.1 torchvision==0.29.1"
)

BATCH = 2
# (model, image size): the sizes exercise AdaptiveAvgPool in both its identity and its resampling regimes.
EVAL_CASES = [
    ("alexnet", 224),
    ("alexnet", 100),
    *[(f"vgg{depth}{suffix}", 64) for depth in (11, 13, 16, 19) for suffix in ("", "_bn")],
    ("googlenet", 64),
    ("googlenet", 224),
    ("inception_v3", 75),
    ("inception_v3", 299),
    *[(name, 64) for name in ("resnet18", "resnet34", "resnet50", "wide_resnet50_2", "resnext50_32x4d")],
    pytest.param("resnet101", 64, marks=pytest.mark.slow),
    pytest.param("resnet152", 64, marks=pytest.mark.slow),
    ("convnext_tiny", 64),
    ("convnext_tiny", 224),
    ("convnext_small", 64),
    ("convnext_base", 64),
    pytest.param("convnext_large", 64, marks=pytest.mark.slow),  # 3.6 GB peak memory (12 s here)
    ("densenet121", 64),
    ("densenet121", 224),
    ("densenet169", 64),
    ("densenet201", 64),
    ("mobilenet_v2", 64),
    ("mobilenet_v2", 224),
    ("mobilenet_v3_large", 64),
    ("mobilenet_v3_large", 224),
    ("mobilenet_v3_small", 64),
]


def randomized_torchvision_model(name: str, **kwargs):
    """torchvision's model with random weights, and random biases, BN statistics, LayerNorm scales and ConvNeXt
    layer scales so every tensor matters (a layer scale left at its 1e-6 would hide each block's branch)."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            if isinstance(getattr(module, "layer_scale", None), torch.nn.Parameter):
                module.layer_scale.copy_(torch.rand(module.layer_scale.shape, generator=generator) + 0.5)
            if getattr(module, "bias", None) is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    return model


def random_images(size: int, seed: int = 0, batch: int = BATCH) -> np.ndarray:
    """NHWC float32 images."""
    return np.random.default_rng(seed).standard_normal((batch, size, size, 3)).astype(np.float32)


def torch_forward(model, images: np.ndarray, train: bool = False):
    model.train(train)
    with torch.no_grad():
        outputs = model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    return outputs


def flax_forward(name: str, variables: dict, images: np.ndarray, train: bool = False, **options):
    model = models.create(name, num_classes=1000, **options)
    if train:
        apply = lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[0]
    else:
        apply = lambda v, x: model.apply(v, x, train=False)
    return jax.jit(apply)(variables, images)


@pytest.mark.parametrize(("name", "size"), EVAL_CASES)
def test_eval_logits_match_torchvision(name, size):
    torch_kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    if name == "inception_v3":
        torch_kwargs = {"init_weights": True}  # keeps its auxiliary head: the converted weights include it
    reference = randomized_torchvision_model(name, **torch_kwargs)
    variables = from_torchvision(reference.state_dict(), name)
    images = random_images(size)
    expected = torch_forward(reference, images).numpy()
    check_and_record("torchvision", name, f"{size} px, eval", flax_forward(name, variables, images), expected)


def test_numpy_state_dict_and_transform_input_match_torchvision():
    reference = randomized_torchvision_model("googlenet", aux_logits=False, init_weights=True, transform_input=True)
    state = {key: value.numpy() for key, value in reference.state_dict().items()}
    variables = from_torchvision(state, "googlenet")
    images = random_images(64, seed=1)
    expected = torch_forward(reference, images).numpy()
    actual = flax_forward("googlenet", variables, images, transform_input=True)
    check_and_record("torchvision", "googlenet", "64 px, eval, transform_input", actual, expected)


def test_googlenet_auxiliary_heads_match_in_training():
    reference = randomized_torchvision_model(
        "googlenet", aux_logits=True, init_weights=True, dropout=0.0, dropout_aux=0.0
    )
    variables = from_torchvision(reference.state_dict(), "googlenet")
    images = random_images(64, seed=2)
    logits, aux2, aux1 = torch_forward(reference, images, train=True)  # torchvision's order
    ours = flax_forward(
        "googlenet", variables, images, train=True, aux_logits=True, dropout_rate=0.0, aux_dropout_rate=0.0
    )
    for index, (actual, expected) in enumerate(zip(ours, (logits, aux1, aux2), strict=True)):
        output = ("logits", "aux1", "aux2")[index]
        detail = f"64 px, train (batch stats), {output}"
        check_and_record("torchvision", "googlenet", detail, actual, expected.numpy(), TRAIN_MODE_TOLERANCE)


@pytest.mark.slow
def test_inception_v3_auxiliary_head_matches_in_training():
    reference = randomized_torchvision_model("inception_v3", init_weights=True, dropout=0.0)
    variables = from_torchvision(reference.state_dict(), "inception_v3")
    images = random_images(299, seed=3, batch=4)  # the auxiliary head's last BatchNorm sees one value per image
    logits, aux = torch_forward(reference, images, train=True)
    ours = flax_forward("inception_v3", variables, images, train=True, dropout_rate=0.0)
    for output, actual, expected in (("logits", ours[0], logits), ("aux", ours[1], aux)):
        detail = f"299 px, batch 4, train (batch stats), {output}"
        check_and_record("torchvision", "inception_v3", detail, actual, expected.numpy(), TRAIN_MODE_TOLERANCE)


def test_mismatched_architecture_is_rejected():
    state = randomized_torchvision_model("resnet18").state_dict()
    with pytest.raises(ValueError, match="do not fit resnet34"):
        from_torchvision(state, "resnet34")


def test_convnext_of_another_size_is_rejected():
    state = randomized_torchvision_model("convnext_tiny").state_dict()
    assert state["features.1.0.layer_scale"].shape == (96, 1, 1)
    variables = from_torchvision(state, "convnext_tiny")
    block = variables["params"]["stage1_block1"]
    assert block["depthwise_conv"]["kernel"].shape == (7, 7, 1, 96) and block["layer_scale"].shape == (96,)
    np.testing.assert_array_equal(block["layer_scale"], state["features.1.0.layer_scale"].numpy().reshape(96))
    with pytest.raises(ValueError, match="do not fit convnext_small"):
        from_torchvision(state, "convnext_small")


def test_densenet_train_mode_matches_torchvision():
    reference = randomized_torchvision_model("densenet121")
    variables = from_torchvision(reference.state_dict(), "densenet121")
    images = random_images(64, seed=4, batch=4)  # the last block's BatchNorms see 2x2 maps of 4 images
    expected = torch_forward(reference, images, train=True).numpy()
    actual = flax_forward("densenet121", variables, images, train=True)
    check_and_record("torchvision", "densenet121", "64 px, batch 4, train (batch stats)", actual, expected,
                     TRAIN_MODE_TOLERANCE)


def test_densenet_of_another_depth_is_rejected():
    state = randomized_torchvision_model("densenet121").state_dict()
    variables = from_torchvision(state, "densenet121")
    layer = variables["params"]["denseblock3_denselayer24"]
    assert layer["conv1"]["kernel"].shape == (1, 1, 256 + 23 * 32, 128)  # bn_size x growth rate
    assert layer["conv2"]["kernel"].shape == (3, 3, 128, 32)
    np.testing.assert_array_equal(variables["batch_stats"]["transition2"]["norm"]["var"],
                                  state["features.transition2.norm.running_var"].numpy())
    assert variables["params"]["head"]["kernel"].shape == (1024, 1000)
    with pytest.raises(ValueError, match="do not fit densenet169"):
        from_torchvision(state, "densenet169")
    with pytest.raises(ValueError, match="unexpected module 'features.denseblock1.denselayer1.conv3'"):
        from_torchvision({"features.denseblock1.denselayer1.conv3.weight": np.zeros((1, 1, 1, 1))}, "densenet121")


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large"])
def test_mobilenet_train_mode_matches_torchvision(name):
    reference = randomized_torchvision_model(name, dropout=0.0)
    variables = from_torchvision(reference.state_dict(), name)
    images = random_images(64, seed=5, batch=4)  # the last blocks' BatchNorms see 2x2 maps of 4 images
    expected = torch_forward(reference, images, train=True).numpy()
    actual = flax_forward(name, variables, images, train=True, dropout_rate=0.0)
    check_and_record("torchvision", name, "64 px, batch 4, train (batch stats)", actual, expected,
                     TRAIN_MODE_TOLERANCE)


def test_mobilenet_layers_are_mapped_and_another_variant_is_rejected():
    state = randomized_torchvision_model("mobilenet_v3_small").state_dict()
    variables = from_torchvision(state, "mobilenet_v3_small")
    block = variables["params"]["block1"]  # no expansion (16 -> 16), squeeze-excitation to 8 channels
    assert sorted(block) == ["depthwise_bn", "depthwise_conv", "project_bn", "project_conv", "se"]
    assert block["depthwise_conv"]["kernel"].shape == (3, 3, 1, 16)
    assert block["se"]["fc1"]["kernel"].shape == (1, 1, 16, 8)
    np.testing.assert_array_equal(block["se"]["fc2"]["bias"], state["features.1.block.1.fc2.bias"].numpy())
    np.testing.assert_array_equal(variables["batch_stats"]["block4"]["expand_bn"]["var"],
                                  state["features.4.block.0.1.running_var"].numpy())
    assert variables["params"]["pre_head"]["kernel"].shape == (576, 1024)
    with pytest.raises(ValueError, match="do not fit mobilenet_v3_large|unexpected module"):
        from_torchvision(state, "mobilenet_v3_large")
    with pytest.raises(ValueError, match="unexpected module 'features.1.conv.3'"):
        from_torchvision({"features.1.conv.3.weight": np.zeros((1, 1, 1, 1))}, "mobilenet_v2")
    v2 = from_torchvision(randomized_torchvision_model("mobilenet_v2").state_dict(), "mobilenet_v2")
    assert "expand_conv" not in v2["params"]["block1"] and "expand_conv" in v2["params"]["block2"]
    assert v2["params"]["head"]["kernel"].shape == (1280, 1000)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="no torchvision mapping"):
        from_torchvision({}, "resnet_small")
