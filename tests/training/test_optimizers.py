"""Each optimizer's update against its published definition, worked out by hand; decay and LR rules by path;
clipping; gradient accumulation against one big batch; and the config errors for unknown names and kwargs."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from imagenet_jax import models
from imagenet_jax.config import get_base_config
from imagenet_jax.core.state import create_train_state
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.training import optim
from imagenet_jax.training.optim import param_rules
from imagenet_jax.training.steps import make_train_step

LR, WD = 0.1, 0.01


def _config(name: str, lr: float = LR, weight_decay: float = WD, decay_multipliers=(), **kwargs):
    """Constant learning rate `lr` (no warmup, no batch scaling) and the optimizer `name` with `kwargs`."""
    config = get_base_config()
    config.optimizer = ml_collections.ConfigDict({"name": name, "kwargs": kwargs})
    config.schedule = ml_collections.ConfigDict({"name": "constant", "warmup_epochs": 0.0, "kwargs": {}})
    config.learning_rate, config.lr_reference_batch_size, config.weight_decay = lr, 0, weight_decay
    config.weight_decay_multipliers = decay_multipliers
    return config


def _steps(config, params, grads_per_step):
    """Params after one optimizer update per gradient tree in `grads_per_step`."""
    validate_config(config)
    optimizer, _ = optim.create(config, total_steps=100, steps_per_epoch=10)
    state = optimizer.init(params)
    for grads in grads_per_step:
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return jax.tree.map(np.asarray, params)


def _tree(**leaves):
    return {name: {"kernel": jnp.asarray(value, jnp.float32)} for name, value in leaves.items()}


def test_sgd_nesterov_with_l2_matches_pytorch_sgd_over_two_steps():
    # PyTorch SGD(lr, momentum=mu, weight_decay=wd, nesterov=True), dampening 0, per element:
    #   d = g + wd w;  b = d (first step) else mu b + d;  w -= lr (d + mu b).
    mu, w, grads = 0.9, [1.0, -2.0], [[0.5, 0.25], [-1.0, 2.0]]
    buffer = [0.0, 0.0]
    for step, g in enumerate(grads):
        d = [gi + WD * wi for gi, wi in zip(g, w)]
        buffer = d if step == 0 else [mu * b + di for b, di in zip(buffer, d)]
        w = [wi - LR * (di + mu * b) for wi, di, b in zip(w, d, buffer)]
    # By hand, step 1: d = (0.51, 0.23), w = (1 - 0.1 x 0.969, -2 - 0.1 x 0.437) = (0.9031, -2.0437).
    got = _steps(_config("sgd", momentum=mu, nesterov=True), _tree(a=[1.0, -2.0]),
                 [_tree(a=g) for g in grads])["a"]["kernel"]
    np.testing.assert_allclose(got, w, rtol=1e-6)
    one = _steps(_config("sgd", momentum=mu, nesterov=True), _tree(a=[1.0, -2.0]), [_tree(a=grads[0])])
    np.testing.assert_allclose(one["a"]["kernel"], [0.9031, -2.0437], rtol=1e-6)


RESNET18_DECAYED = ["head/kernel", "stem_conv/kernel"] + [
    f"stage{stage}_block{block}/Conv_{conv}/kernel" for stage in range(1, 5) for block in (1, 2) for conv in (0, 1)
] + [f"stage{stage}_block1/shortcut_conv/kernel" for stage in (2, 3, 4)]


def test_weight_decay_mask_on_resnet18_decays_exactly_its_21_kernels():
    model = models.create("resnet18", num_classes=10)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))["params"]
    params = jax.tree.map(lambda leaf: jnp.ones(leaf.shape, leaf.dtype), shapes)
    zeros = jax.tree.map(jnp.zeros_like, params)
    config = _config("sgd", momentum=0.9, nesterov=True)
    config.weight_decay_multipliers = get_base_config().weight_decay_multipliers  # the default rule

    moved = jax.tree_util.tree_map_with_path(
        lambda path, after: (param_rules.leaf_path(path), float(np.abs(1.0 - after).max())),
        _steps(config, params, [zeros]))
    moved = dict(jax.tree.leaves(moved, is_leaf=lambda x: isinstance(x, tuple)))
    decayed = sorted(path for path, change in moved.items() if change > 0)
    assert len(RESNET18_DECAYED) == 21 and decayed == sorted(RESNET18_DECAYED)
    # w = 1, zero gradient, Nesterov's first step: w -= lr (wd + mu wd) on the decayed leaves.
    assert [change for change in moved.values() if change > 0] == pytest.approx([LR * WD * 1.9] * 21, rel=1e-5)
    assert len(moved) == 62 and all(path.endswith(("/bias", "/scale")) for path in set(moved) - set(decayed))
    # torchvision_classic's () decays all 62 leaves, BatchNorm and biases included.
    assert all(change > 0 for change in dict(jax.tree.leaves(jax.tree_util.tree_map_with_path(
        lambda path, after: (param_rules.leaf_path(path), float(np.abs(1.0 - after).max())),
        _steps(_config("sgd", momentum=0.9), params, [zeros])), is_leaf=lambda x: isinstance(x, tuple))).values())


def test_lars_trust_ratio_by_hand_with_bn_and_bias_excluded():
    # kernel: ||w|| = 5, ||g|| = 1, wd 0.1 -> ratio = 0.001 x 5 / (1 + 0.1 x 5) = 1/300;
    #   first step (zero momentum buffer): w -= lr ratio (g + wd w) = 0.5/300 x (0.9, 1.2) = (0.0015, 0.002).
    # BatchNorm scale: excluded from adaptation and (default rule) from decay: w -= lr g = 0.5 x 0.5.
    params = {"conv": {"kernel": jnp.array([[3.0, 4.0]])}, "bn": {"scale": jnp.array([1.0, 1.0])}}
    grads = {"conv": {"kernel": jnp.array([[0.6, 0.8]])}, "bn": {"scale": jnp.array([0.5, 0.5])}}
    config = _config("lars", lr=0.5, weight_decay=0.1, decay_multipliers=((".*/(bias|scale)", 0.0),),
                     momentum=0.9, trust_coefficient=0.001)
    after = _steps(config, params, [grads])
    np.testing.assert_allclose(after["conv"]["kernel"], [[3.0 - 0.0015, 4.0 - 0.002]], rtol=1e-6)
    np.testing.assert_allclose(after["bn"]["scale"], [0.75, 0.75], rtol=1e-6)
    # Second step, same gradient at the new weights: v = mu v + lr ratio' (g + wd w').
    w1 = np.array([3.0 - 0.0015, 4.0 - 0.002])
    ratio = 0.001 * np.linalg.norm(w1) / (1.0 + 0.1 * np.linalg.norm(w1))
    velocity = 0.9 * np.array([0.0015, 0.002]) + 0.5 * ratio * (np.array([0.6, 0.8]) + 0.1 * w1)
    twice = _steps(config, params, [grads, grads])
    np.testing.assert_allclose(twice["conv"]["kernel"][0], w1 - velocity, rtol=1e-6)


def test_lamb_one_update_by_hand():
    # First step: m_hat = g, v_hat = g^2, so adam_i = g_i / (|g_i| + eps); u = adam + wd w;
    # w -= lr (||w|| / ||u||) u. The BatchNorm scale (excluded by default) gets w -= lr adam, no decay.
    eps, wd, lr = 1e-6, 0.01, 0.1
    w, g = np.array([3.0, 4.0]), np.array([0.6, -0.8])
    u = g / (np.abs(g) + eps) + wd * w
    expected = w - lr * np.linalg.norm(w) / np.linalg.norm(u) * u  # about (2.641, 4.361)
    params = {"conv": {"kernel": jnp.asarray([w])}, "bn": {"scale": jnp.array([2.0])}}
    grads = {"conv": {"kernel": jnp.asarray([g])}, "bn": {"scale": jnp.array([0.3])}}
    after = _steps(_config("lamb", lr=lr, weight_decay=wd, decay_multipliers=((".*/scale", 0.0),)), params, [grads])
    np.testing.assert_allclose(after["conv"]["kernel"][0], expected, rtol=1e-6)
    np.testing.assert_allclose(after["bn"]["scale"], [2.0 - lr * 0.3 / (0.3 + eps)], rtol=1e-6)


def test_adamw_two_updates_by_hand():
    # m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; bias-corrected; w -= lr (m_hat / (sqrt(v_hat) + eps) + wd w).
    b1, b2, eps = 0.9, 0.999, 1e-8
    w, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    grads = [np.array([0.5, 0.25]), np.array([-1.0, 2.0])]
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - LR * (m_hat / (np.sqrt(v_hat) + eps) + WD * w)
    got = _steps(_config("adamw", b1=b1, b2=b2, eps=eps), _tree(a=[1.0, -2.0]), [_tree(a=g) for g in grads])
    np.testing.assert_allclose(got["a"]["kernel"], w, rtol=1e-6)


def test_rmsprop_follows_tensorflow_semantics_eps_inside_sqrt_and_ms_from_one():
    # TF1 RMSPropOptimizer (Inception-v3: decay 0.9, eps 1.0, momentum 0.9), L2 on the gradient:
    #   g' = g + wd w; ms = 0.9 ms + 0.1 g'^2 (ms starts at 1); mom = 0.9 mom + lr g' / sqrt(ms + 1); w -= mom.
    w, ms, mom = np.array([1.0, -2.0]), np.ones(2), np.zeros(2)
    grads = [np.array([0.5, 3.0]), np.array([-1.0, 2.0])]
    for g in grads:
        g = g + WD * w
        ms = 0.9 * ms + 0.1 * g**2
        mom = 0.9 * mom + LR * g / np.sqrt(ms + 1.0)
        w = w - mom
    got = _steps(_config("rmsprop"), _tree(a=[1.0, -2.0]), [_tree(a=g) for g in grads])["a"]["kernel"]
    np.testing.assert_allclose(got, w, rtol=1e-6)
    # PyTorch's placement (eps outside the sqrt, ms from 0) is a different optimizer at eps = 1.
    torch_like = _steps(_config("rmsprop", eps_in_sqrt=False, initial_scale=0.0), _tree(a=[1.0, -2.0]),
                        [_tree(a=g) for g in grads])["a"]["kernel"]
    assert np.abs(torch_like - got).max() > 0.01


def test_optax_fallback_adam_takes_l2_and_lion_its_own_masked_decay():
    # optax.adam has no weight_decay argument: L2 on the gradient, first step -lr (g + wd w) / (|g + wd w| + eps).
    got = _steps(_config("adam"), _tree(a=[1.0, -2.0]), [_tree(a=[0.5, 0.02])])["a"]["kernel"]
    g = np.array([0.5 + WD, 0.02 - 2 * WD])
    np.testing.assert_allclose(got, np.array([1.0, -2.0]) - LR * g / (np.abs(g) + 1e-8), rtol=1e-6)
    # optax.lion decays decoupled through its mask; first step: w -= lr (sign(g) + wd w) where decayed.
    params, grads = _tree(a=[1.0, -2.0], b=[3.0]), _tree(a=[0.5, -0.5], b=[-1.0])
    got = _steps(_config("lion", decay_multipliers=(("b/.*", 0.0),)), params, [grads])
    np.testing.assert_allclose(got["a"]["kernel"], [1.0 - LR * (1 + WD), -2.0 - LR * (-1 - 2 * WD)], rtol=1e-6)
    np.testing.assert_allclose(got["b"]["kernel"], [3.0 + LR], rtol=1e-6)
    with pytest.raises(ConfigError, match=r"optax's 'lion' decays with a mask, so multipliers must be 0 or 1"):
        validate_config(_config("lion", decay_multipliers=(("b/.*", 2.0),)))


def test_lr_and_weight_decay_multipliers_by_regex_first_match_wins():
    params = {"head": {"kernel": jnp.array([1.0]), "bias": jnp.array([1.0])}, "body": {"kernel": jnp.array([1.0])}}
    grads = jax.tree.map(lambda _: jnp.array([0.5]), params)
    config = _config("sgd", momentum=0.0, decay_multipliers=(("body/.*", 2.0),))
    config.lr_multipliers = (("head/kernel", 0.0), ("head/.*", 10.0))
    after = _steps(config, params, [grads])
    assert float(after["head"]["kernel"][0]) == 1.0  # frozen by the first rule, though "head/.*" matches too
    np.testing.assert_allclose(after["head"]["bias"], [1.0 - 10 * LR * (0.5 + WD)], rtol=1e-6)  # lr x10, wd x1
    np.testing.assert_allclose(after["body"]["kernel"], [1.0 - LR * (0.5 + 2 * WD)], rtol=1e-6)  # lr x1, wd x2
    assert param_rules.value_for("xhead/kernel", config.lr_multipliers) == 1.0  # the whole path must match


def test_grad_clipping_scales_the_global_norm_before_weight_decay():
    # ||g|| = ||(6, 8)|| = 10, clipped to 1 -> (0.6, 0.8); then L2 adds wd w; plain SGD.
    config = _config("sgd", momentum=0.0)
    config.grad_clip_norm = 1.0
    after = _steps(config, _tree(a=[1.0, 2.0]), [_tree(a=[6.0, 8.0])])["a"]["kernel"]
    np.testing.assert_allclose(after, [1.0 - LR * (0.6 + WD), 2.0 - LR * (0.8 + 2 * WD)], rtol=1e-6)
    config.grad_clip_norm = 20.0  # above the norm: untouched
    after = _steps(config, _tree(a=[1.0, 2.0]), [_tree(a=[6.0, 8.0])])["a"]["kernel"]
    np.testing.assert_allclose(after, [1.0 - LR * (6.0 + WD), 2.0 - LR * (8.0 + 2 * WD)], rtol=1e-6)


class _MLP(nn.Module):
    """BatchNorm-free: its gradient on a batch is the mean of its gradients on equal parts of it."""

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = images.reshape((images.shape[0], -1))
        return nn.Dense(4)(nn.relu(nn.Dense(16)(x)))


def test_k_micro_batches_equal_one_k_times_batch_and_log_the_applied_rate():
    rng = np.random.default_rng(0)
    batches = [{"image": rng.integers(0, 256, (8, 4, 4, 1), dtype=np.uint8),
                "label": rng.integers(0, 4, (8,), dtype=np.int32)} for _ in range(2)]

    def train(batch_size: int, accumulation: int):
        config = _config("sgd", lr=0.05, weight_decay=1e-3, momentum=0.9, nesterov=True)
        config.schedule = ml_collections.ConfigDict({"name": "cosine", "warmup_epochs": 1.0, "kwargs": {}})
        config.batch_size, config.lr_reference_batch_size = batch_size, 8  # peak 0.05 x 8/8 either way
        config.grad_accumulation_steps, config.grad_clip_norm = accumulation, 0.5
        validate_config(config)
        optimizer, schedule = optim.create(config, total_steps=4 * accumulation, steps_per_epoch=2 * accumulation)
        model = _MLP()
        state = create_train_state(model, optimizer, jax.random.key(0), (4, 4, 1))
        step = jax.jit(make_train_step(model, optimizer, schedule, num_classes=4, mean=(0.0,), std=(255.0,),
                                       label_smoothing=0.0))
        rates = []
        for batch in batches:
            for part in range(accumulation):
                piece = {key: value[part * batch_size:(part + 1) * batch_size] for key, value in batch.items()}
                state, metrics = step(state, piece, jax.random.key(0))
                rates.append(float(metrics["learning_rate"]))
        return state.params, rates

    whole, whole_rates = train(8, 1)
    accumulated, micro_rates = train(2, 4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), whole, accumulated)
    # Warmup over the first 2 of 4 updates: update 0 at rate 0, update 1 at 0.05 x 1/2.
    assert whole_rates == pytest.approx([0.0, 0.025]) and micro_rates == pytest.approx([0.0] * 4 + [0.025] * 4)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), whole,
                         create_train_state(_MLP(), optax.sgd(0.1), jax.random.key(0), (4, 4, 1)).params)
    assert max(jax.tree.leaves(moved)) > 1e-3  # the second update really moved the weights


@pytest.mark.parametrize("optimizer, expected", [
    ({"name": "adamx", "kwargs": {}}, r"config\.optimizer\.name='adamx' is not a registered optimizer or an optax "
                                      r"optimizer\. Did you mean adamax, adam, adamaxw\? Registered: adamw, lamb, "
                                      r"lars, rmsprop, sgd\. Also valid: adabelief"),
    ({"name": "adamw", "kwargs": {"momentum": 0.9}}, r"config\.optimizer\.kwargs\.momentum is not an argument of "
                                                     r"optimizer 'adamw'; it accepts: b1=0\.9, b2=0\.999, eps=1e-08\."),
    ({"name": "adam", "kwargs": {"momentum": 0.9}}, r"config\.optimizer\.kwargs\.momentum is not an argument of "
                                                    r"optimizer 'adam'; it accepts: b1=0\.9, b2=0\.999, eps=1e-08"),
    ({"name": "sgd", "kwargs": {"nesterov": "yes"}}, r"config\.optimizer\.kwargs\.nesterov='yes' must be of the "
                                                     r"same kind as its default False"),
    ({"name": "sgd", "kwargs": {"momentum": 1.5}}, r"config\.optimizer\.kwargs\.momentum=1\.5 must be in \[0, 1\)"),
    ({"name": "lars", "kwargs": {"exclude_from_adaptation": "bn("}},
     r"config\.optimizer\.kwargs\.exclude_from_adaptation='bn\(' is not a regular expression"),
])
def test_unknown_optimizer_names_and_kwargs_fail_up_front_listing_the_valid_ones(optimizer, expected):
    config = get_base_config()
    config.optimizer = ml_collections.ConfigDict(optimizer)
    with pytest.raises(ConfigError, match=expected):
        validate_config(config)


@pytest.mark.parametrize("key, value, expected", [
    ("weight_decay_multipliers", ((".*bias", -1.0),), r"config\.weight_decay_multipliers: the multiplier of"),
    ("lr_multipliers", (("head/(", 2.0),), r"config\.lr_multipliers: 'head/\(' is not a regular expression"),
    ("grad_accumulation_steps", 0, r"config\.grad_accumulation_steps=0 must be an integer >= 1"),
    ("grad_clip_norm", -1.0, r"config\.grad_clip_norm=-1\.0 must be >= 0"),
    ("momentum", 0.9, r"unknown config key config\.momentum\. It moved to config\.optimizer\.kwargs\.momentum"),
])
def test_bad_optimizer_keys_name_the_key(key, value, expected):
    config = get_base_config()
    config[key] = value
    with pytest.raises(ConfigError, match=expected):
        validate_config(config)


def test_every_registered_optimizer_reduces_a_quadratic():
    # Sanity over the registry: 20 updates on 0.5 ||w - 3||^2 move every optimizer toward 3.
    for name in optim.OPTIMIZERS.names():
        config = _config(name, lr=0.1 if name != "lars" else 50.0, weight_decay=0.0)
        w = _tree(a=[0.0, 1.0])
        for _ in range(20):
            w = _steps(config, w, [jax.tree.map(lambda p: p - 3.0, w)])
        assert math.isfinite(float(w["a"]["kernel"].sum()))
        assert float(np.abs(w["a"]["kernel"] - 3.0).max()) < 2.0, name
