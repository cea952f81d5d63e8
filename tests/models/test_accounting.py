"""Parameter counts equal torchvision's exactly and MACs are within 3% of its "GFLOPS" (MACs) column."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from imagenet_jax import models
from imagenet_jax.models import accounting
from imagenet_jax.models.__main__ import main

# torchvision 0.29 model metadata (num_params, _ops in GMACs), see shared/guide/REFERENCE.md.
TORCHVISION = {
    "alexnet": (61_100_840, 0.714),
    "vgg11": (132_863_336, 7.609),
    "vgg11_bn": (132_868_840, 7.609),
    "vgg13": (133_047_848, 11.308),
    "vgg13_bn": (133_053_736, 11.308),
    "vgg16": (138_357_544, 15.47),
    "vgg16_bn": (138_365_992, 15.47),
    "vgg19": (143_667_240, 19.632),
    "vgg19_bn": (143_678_248, 19.632),
    "googlenet": (6_624_904, 1.498),
    "inception_v3": (27_161_264, 5.713),
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "wide_resnet50_2": (68_883_240, 11.398),
    "resnext50_32x4d": (25_028_904, 4.23),
    "convnext_tiny": (28_589_128, 4.456),
    "convnext_small": (50_223_688, 8.684),
    "convnext_base": (88_591_464, 15.355),
    "convnext_large": (197_767_336, 34.361),
    "densenet121": (7_978_856, 2.834),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
    "mobilenet_v2": (3_504_872, 0.301),
    "mobilenet_v3_large": (5_483_032, 0.217),
    "mobilenet_v3_small": (2_542_856, 0.057),
}
# The VGG paper's configurations: A, B, D, E are torchvision's vgg11/13/16/19 (LRN has no parameters); C adds
# three 1x1 layers to B: 256*256+256 + 2*(512*512+512) parameters and 56^2*256^2 + (28^2 + 14^2)*512^2 MACs.
PAPER_VGG = {
    "vgg_a": TORCHVISION["vgg11"],
    "vgg_a_lrn": TORCHVISION["vgg11"],
    "vgg_b": TORCHVISION["vgg13"],
    "vgg_c": (133_638_952, 11.771),
    "vgg_d": TORCHVISION["vgg16"],
    "vgg_e": TORCHVISION["vgg19"],
}
# Small-image models of this project (no published counterpart): counted once, kept from drifting.
PROJECT_MODELS = {"resnet20": (336_824, 0.0407), "resnet_small": (436_360, 0.0383), "vgg_small": (904_968, 0.0302)}
EXPECTED = TORCHVISION | PAPER_VGG | PROJECT_MODELS


def test_every_expected_count_names_a_registered_model():
    assert set(EXPECTED) <= set(models.names()), set(EXPECTED) - set(models.names())


@pytest.mark.parametrize("name", models.names())
def test_params_exact_and_macs_within_3_percent(name):
    # Iterates the registry: every model is counted; those with a published (or kept) count must match it.
    cost = accounting.model_cost(name)
    assert cost.params > 0 and cost.gmacs > 0
    assert cost.image_size == models.default_image_size(name)
    if name in EXPECTED:
        expected_params, expected_gmacs = EXPECTED[name]
        assert cost.params == expected_params
        assert cost.gmacs == pytest.approx(expected_gmacs, rel=0.03)


@pytest.mark.parametrize(
    ("name", "options", "expected_params"),
    [
        ("googlenet", {"aux_logits": True}, 13_004_888),  # torchvision googlenet(aux_logits=True)
        ("inception_v3", {"aux_logits": False}, 23_834_568),  # torchvision inception_v3(aux_logits=False)
        ("vgg_c", {"batch_norm": True}, 133_638_952 + 2 * (64 * 2 + 128 * 2 + 256 * 3 + 512 * 6)),
    ],
)
def test_variant_param_counts(name, options, expected_params):
    assert accounting.model_cost(name, **options).params == expected_params


class _UnpaddedNetwork(nn.Module):
    """Convolutions without padding (XLA's count skips padded taps) and no element-wise work."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(8, (3, 3), (2, 2), padding="VALID", use_bias=False)(x)
        x = nn.Conv(16, (3, 3), padding="VALID", feature_group_count=4, use_bias=False)(x)
        return nn.Dense(10, use_bias=False)(x.reshape(x.shape[0], -1))


def test_macs_agree_with_xla_cost_analysis_without_padding():
    model = _UnpaddedNetwork()
    variables = accounting.abstract_variables(model, 33)
    images = jax.ShapeDtypeStruct((1, 33, 33, 3), jnp.float32)
    forward = lambda v, x: model.apply(v, x)
    expected = 16 * 16 * 8 * 27 + 14 * 14 * 16 * 9 * 2 + 14 * 14 * 16 * 10
    assert accounting.count_macs(forward, variables, images) == expected
    assert jax.jit(forward).lower(variables, images).cost_analysis()["flops"] == 2 * expected


def test_cli_prints_json(capsys):
    main(["--json", "--models", "alexnet,resnet18"])
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["alexnet", "resnet18"]
    assert set(rows[0]) == {"name", "params", "gmacs", "image_size"}
    assert rows[0]["params"] == TORCHVISION["alexnet"][0]


def test_cli_prints_table(capsys):
    main(["--models", "googlenet"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "params", "GMACs", "image"]
    assert lines[1].split() == ["googlenet", "6,624,904", "1.498", "224"]
