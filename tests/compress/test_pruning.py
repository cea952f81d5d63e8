"""Magnitude pruning: Zhu & Gupta's schedule against its formula, exactly round(s x n) zeros where the schedule says
(per layer, globally, whole output channels), and the masks kept in the optimizer state across a resume."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from imagenet_jax import models
from imagenet_jax.compress import pruning
from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options
from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel.mesh import leaf_path
from tests.conftest import read_metrics, run_main, tiny_run_overrides

PRUNING = ["--config.pruning.method=magnitude", "--config.pruning.scope=global"]


def _default_params() -> dict:
    options = model_options("resnet_small", stage_sizes=(1, 1, 1), stage_widths=(32, 64, 128), stem_width=32,
                            stem="small_pool")
    model = models.create("resnet_small", num_classes=10, **options)
    return model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)["params"]


def _run_transform(transform, params, steps: int, seed: int = 1):
    """`steps` SGD updates with Gaussian gradients through optax.chain(sgd, transform); the params of each step."""
    optimizer = optax.chain(optax.sgd(0.05), transform)
    state = optimizer.init(params)
    update = jax.jit(optimizer.update)
    history = []
    for step in range(steps):
        keys = jax.random.split(jax.random.key(seed + step), len(jax.tree.leaves(params)))
        grads = jax.tree.unflatten(jax.tree.structure(params), [
            jax.random.normal(key, leaf.shape) for key, leaf in zip(keys, jax.tree.leaves(params))])
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history, state


def _prunable(params, include=(r".*kernel",), exclude=(r"stem.*", r"head/.*")) -> dict[str, np.ndarray]:
    flags = pruning.prunable_paths(params, include, exclude)
    return {leaf_path(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
            if flags[leaf_path(path)]}


def test_polynomial_schedule_equals_zhu_gupta_formula_and_updates_every_frequency_steps():
    initial, target, begin, end, frequency = 0.1, 0.9, 20, 120, 25
    for step in [0, 19, 20, 21, 45, 70, 95, 100, 119, 120, 121, 500]:
        expected = 0.0 if step < begin else target + (initial - target) * (1 - min(step - begin, end - begin)
                                                                           / (end - begin)) ** 3
        got = float(pruning.polynomial_sparsity(step, initial=initial, target=target, begin=begin, end=end))
        assert got == pytest.approx(expected, abs=1e-6), step
    updates = [step for step in range(200)
               if pruning.is_mask_update_step(step, begin=begin, end=end, frequency=frequency)]
    assert updates == [20, 45, 70, 95, 120]  # end is always an update step, even off the frequency grid
    assert [s for s in range(200) if pruning.is_mask_update_step(s, begin=0, end=10, frequency=4)] == [0, 4, 8, 10]


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_layer_scope_prunes_exactly_round_s_n_of_every_kernel_at_end_step_and_keeps_them_zero(sparsity):
    params = _default_params()
    transform = pruning.prune(target_sparsity=sparsity, begin_step=2, end_step=6, frequency=2, scope="layer",
                              exclude=(r"stem.*", r"head/.*"))
    history, state = _run_transform(transform, params, steps=9)
    before = _prunable(history[0])  # step 1, before begin_step: nothing pruned
    assert all(np.count_nonzero(kernel == 0) == 0 for kernel in before.values())
    at_end = _prunable(history[5])  # step 6 == end_step
    assert len(at_end) == 8  # every block conv and the two 1x1 shortcut convs; not the stem, not the head
    for path, kernel in at_end.items():
        assert np.count_nonzero(kernel == 0) == round(sparsity * kernel.size), path
    for path, kernel in _prunable(history[-1]).items():  # after end_step: the same weights stay exactly zero
        np.testing.assert_array_equal(kernel == 0, at_end[path] == 0)
    masks = {leaf_path(p): np.asarray(m) for p, m in jax.tree_util.tree_flatten_with_path(state[1].masks)[0]}
    for path, kernel in at_end.items():
        np.testing.assert_array_equal(masks[path] == 0, kernel == 0)
    # Layers not prunable keep every weight and a scalar (broadcast) mask.
    assert np.count_nonzero(np.asarray(history[-1]["head"]["kernel"])) == history[-1]["head"]["kernel"].size
    assert masks["head/kernel"].shape == ()


def test_intermediate_mask_updates_follow_the_cubic_schedule():
    params = _default_params()
    transform = pruning.prune(target_sparsity=0.8, initial_sparsity=0.2, begin_step=1, end_step=9, frequency=4,
                              scope="global")
    history, _ = _run_transform(transform, params, steps=9)
    total = sum(kernel.size for kernel in _prunable(params).values())
    for step in (1, 5, 9):  # update steps; sparsity holds in between
        zeros = sum(np.count_nonzero(kernel == 0) for kernel in _prunable(history[step - 1]).values())
        expected = 0.8 + (0.2 - 0.8) * (1 - (step - 1) / 8) ** 3
        scheduled = pruning.polynomial_sparsity(step, initial=0.2, target=0.8, begin=1, end=9)
        assert float(scheduled) == pytest.approx(expected, abs=1e-6)
        assert zeros == int(np.round(np.float32(scheduled) * np.float32(total))), step
    held = sum(np.count_nonzero(kernel == 0) for kernel in _prunable(history[6 - 1]).values())
    assert held == sum(np.count_nonzero(kernel == 0) for kernel in _prunable(history[5 - 1]).values())


def test_global_scope_reaches_the_target_over_all_prunable_weights_with_uneven_layers():
    params = _default_params()
    history, _ = _run_transform(pruning.prune(target_sparsity=0.75, begin_step=0, end_step=3, frequency=1), params, 4)
    kernels = _prunable(history[2])
    total = sum(kernel.size for kernel in kernels.values())
    assert sum(np.count_nonzero(kernel == 0) for kernel in kernels.values()) == round(0.75 * total)
    per_layer = [np.mean(kernel == 0) for kernel in kernels.values()]
    assert max(per_layer) - min(per_layer) > 0.05  # global ranking: layers end up with different sparsities


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_channel_structure_zeros_whole_output_channels(scope):
    params = _default_params()
    transform = pruning.prune(target_sparsity=0.5, begin_step=0, end_step=2, frequency=1, scope=scope,
                              structure="channel")
    history, _ = _run_transform(transform, params, steps=3)
    kernels = _prunable(history[-1])
    pruned_channels = total_channels = 0
    for path, kernel in kernels.items():
        per_channel = kernel.reshape(-1, kernel.shape[-1])
        zero_channels = np.all(per_channel == 0, axis=0)
        # Every weight is either in an all-zero output channel or nonzero (no partially pruned channel).
        assert np.count_nonzero(per_channel == 0) == zero_channels.sum() * per_channel.shape[0], path
        if scope == "layer":
            assert zero_channels.sum() == round(0.5 * kernel.shape[-1]), path
        pruned_channels += zero_channels.sum()
        total_channels += kernel.shape[-1]
    assert pruned_channels == round(0.5 * total_channels)


def test_bad_pruning_keys_raise_config_errors_naming_the_key():
    config = get_base_config()
    config.pruning.method = "magnitude"
    for key, value, needle in [("target_sparsity", 1.0, "config.pruning.target_sparsity"),
                               ("scope", "net", "config.pruning.scope"),
                               ("structure", "filter", "config.pruning.structure"),
                               ("frequency", 0, "config.pruning.frequency"),
                               ("include", (r"(",), "config.pruning.include")]:
        bad = ml_collections.ConfigDict(config.to_dict())
        bad.pruning[key] = value
        with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
            pruning.validate_config(bad)
    bad = ml_collections.ConfigDict(config.to_dict())
    bad.pruning.begin_step, bad.pruning.end_step = 10, 5
    with pytest.raises(ConfigError, match=r"config\.pruning\.end_step"):
        pruning.validate_config(bad)
    with pytest.raises(ConfigError, match=r"config\.pruning\.include"):
        pruning.prune(target_sparsity=0.5, end_step=2, include=("nothing",)).init(_default_params())


def _params_at(workdir: str, step: int) -> dict[str, np.ndarray]:
    from imagenet_jax.runs import load_run

    return _prunable(load_run(workdir).restore(step).state["params"])


@pytest.mark.slow
def test_sparsity_is_exactly_reached_at_end_step_and_kept_after_resuming_from_the_checkpoint(tmp_path,
                                                                                            fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=10), *PRUNING, "--config.pruning.target_sparsity=0.75",
                 "--config.pruning.begin_step=2", "--config.pruning.end_step=8", "--config.pruning.frequency=2",
                 "--config.checkpoint_every_steps=4", "--config.eval_every_steps=1000"]
    first = run_main(workdir, *overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    at_end = _params_at(workdir, 8)
    total = sum(kernel.size for kernel in at_end.values())
    zeros = {path: kernel == 0 for path, kernel in at_end.items()}
    assert sum(mask.sum() for mask in zeros.values()) == round(0.75 * total)
    assert sum(np.count_nonzero(kernel == 0) for kernel in _params_at(workdir, 4).values()) < round(0.75 * total)
    resumed = run_main(workdir, *overrides, "--config.num_train_steps=16", "--config.allow_config_change=True")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step 10" in resumed.stderr
    for step in (10, 16):  # training went on from the restored masks: the same weights are still exactly zero
        for path, kernel in _params_at(workdir, step).items():
            np.testing.assert_array_equal(kernel == 0, zeros[path], err_msg=f"{path} at step {step}")
    assert max(row["step"] for row in read_metrics(workdir)) == 16
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "16"))
