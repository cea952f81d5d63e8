"""Magnitude pruning removes exactly the smallest: the k = round(s x n) weights of least |w| (per layer, or over all
prunable kernels together) and the output channels of least L2 norm (per layer, or globally by the norm relative
to the layer's mean channel norm), through the optax transform with zero gradients so the params are the ones
ranked. Each layout is built so that pruning the largest, or ranking by another norm, picks a different set."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.compress import pruning

SHAPES = {"block_a": (3, 3, 2, 4), "block_b": (6, 5), "block_c": (2, 2, 3, 2)}  # conv HWIO, dense, conv
EXCLUDE = (r"head/.*",)


def _pruned_params(params: dict, sparsity: float, scope: str, structure: str) -> dict[str, np.ndarray]:
    """The kernels after one update at end_step with zero gradients: only the pruning changes them."""
    transform = pruning.prune(target_sparsity=sparsity, begin_step=0, end_step=1, frequency=1, scope=scope,
                              structure=structure, exclude=EXCLUDE)
    optimizer = optax.chain(optax.sgd(0.1), transform)
    state = optimizer.init(params)
    updates, _ = optimizer.update(optax.tree.zeros_like(params), state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new["head"]["kernel"], params["head"]["kernel"])  # excluded: never pruned
    return {name: np.asarray(new[name]["kernel"]) for name in SHAPES}


def _params(kernels: dict[str, np.ndarray]) -> dict:
    head = np.full((4, 3), 1e-3, np.float32)  # smaller than any prunable weight: it would be first if it counted
    return {**{name: {"kernel": jnp.asarray(kernel)} for name, kernel in kernels.items()},
            "head": {"kernel": jnp.asarray(head)}}


def _distinct_magnitudes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Kernels whose |w| over all layers together are 1..N in a random order, with random signs."""
    sizes = [int(np.prod(shape)) for shape in SHAPES.values()]
    magnitudes = rng.permutation(sum(sizes)).astype(np.float32) + 1
    signs = rng.choice(np.float32([-1, 1]), size=sum(sizes))
    kernels, offset = {}, 0
    for (name, shape), size in zip(SHAPES.items(), sizes):
        kernels[name] = (signs * magnitudes)[offset:offset + size].reshape(shape)
        offset += size
    return kernels


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.8])
def test_layer_scope_zeros_exactly_the_k_smallest_magnitudes_of_each_kernel(sparsity):
    kernels = _distinct_magnitudes(np.random.default_rng(0))
    pruned = _pruned_params(_params(kernels), sparsity, "layer", "unstructured")
    for name, kernel in kernels.items():
        count = round(sparsity * kernel.size)
        smallest = np.argsort(np.abs(kernel).reshape(-1))[:count]
        expected = np.zeros(kernel.size, bool)
        expected[smallest] = True
        np.testing.assert_array_equal(pruned[name].reshape(-1) == 0, expected, err_msg=name)
        kept = pruned[name] != 0
        np.testing.assert_array_equal(pruned[name][kept], kernel[kept])  # the kept weights are untouched
        assert np.abs(kernel[~kept]).max() < np.abs(kernel[kept]).min()


@pytest.mark.parametrize("sparsity", [0.3, 0.6])
def test_global_scope_zeros_exactly_the_k_smallest_magnitudes_over_all_kernels(sparsity):
    kernels = _distinct_magnitudes(np.random.default_rng(1))
    pruned = _pruned_params(_params(kernels), sparsity, "global", "unstructured")
    every = np.concatenate([np.abs(kernel).reshape(-1) for kernel in kernels.values()])
    threshold = np.sort(every)[round(sparsity * every.size)]  # the smallest magnitude kept (all distinct)
    for name, kernel in kernels.items():
        np.testing.assert_array_equal(pruned[name] == 0, np.abs(kernel) < threshold, err_msg=name)
    assert sum(np.count_nonzero(kernel == 0) for kernel in pruned.values()) == round(sparsity * every.size)


def _channels_with_norms(norms: np.ndarray, fan_in_shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A kernel of shape fan_in_shape + (len(norms),) whose output channel c has L2 norm norms[c]."""
    directions = rng.normal(size=(int(np.prod(fan_in_shape)), len(norms)))
    directions /= np.linalg.norm(directions, axis=0)
    return (directions * norms).reshape(*fan_in_shape, len(norms)).astype(np.float32)


def test_layer_channel_pruning_removes_exactly_the_lowest_l2_norm_output_channels():
    rng = np.random.default_rng(2)
    kernels = {name: _channels_with_norms(rng.permutation(shape[-1]) + 1.0, shape[:-1], rng)
               for name, shape in SHAPES.items()}
    # block_b (fan-in 6, 5 channels, 2 pruned): spread channels (all weights equal) and spikes (one weight).
    spread, spike = np.full(6, 1 / np.sqrt(6), np.float32), np.float32([1, 0, 0, 0, 0, 0])
    kernels["block_b"] = np.stack([1.8 * spread, 2.0 * spike, 1.0 * spread, 9.0 * spread, 12.0 * spike], axis=1)
    pruned = _pruned_params(_params(kernels), 0.5, "layer", "channel")
    for name, kernel in kernels.items():
        norms = np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0)
        lowest = set(np.argsort(norms)[:round(0.5 * kernel.shape[-1])].tolist())
        per_channel = pruned[name].reshape(-1, kernel.shape[-1])
        zero_channels = {c for c in range(kernel.shape[-1]) if np.all(per_channel[:, c] == 0)}
        assert zero_channels == lowest, name
        kept = sorted(set(range(kernel.shape[-1])) - lowest)
        np.testing.assert_array_equal(per_channel[:, kept], kernel.reshape(-1, kernel.shape[-1])[:, kept])
    # L2 norms 1.8, 2.0, 1.0, ...: channels 2 and 0 go; by L1 norm (4.4, 2.0, 2.4, ...) it would be 1 and 2.
    assert [bool(np.all(pruned["block_b"][:, c] == 0)) for c in range(5)] == [True, False, True, False, False]


def test_global_channel_pruning_ranks_by_norm_relative_to_the_layers_mean_channel_norm():
    rng = np.random.default_rng(3)
    scales = {"block_a": 100.0, "block_b": 1.0, "block_c": 10.0}  # raw norms would prune block_b's channels first
    relative = {name: rng.permutation(shape[-1]) + 1.0 + 0.1 * index
                for index, (name, shape) in enumerate(SHAPES.items())}  # distinct across layers too
    kernels = {name: _channels_with_norms(scales[name] * relative[name], shape[:-1], rng)
               for name, shape in SHAPES.items()}
    pruned = _pruned_params(_params(kernels), 0.5, "global", "channel")
    scores = []
    for name, kernel in kernels.items():
        norms = np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0)
        scores += [(norm / norms.mean(), name, channel) for channel, norm in enumerate(norms)]
    count = round(0.5 * len(scores))
    expected = {(name, channel) for _, name, channel in sorted(scores)[:count]}
    zeros = {(name, channel) for name, kernel in pruned.items() for channel in range(kernel.shape[-1])
             if np.all(kernel.reshape(-1, kernel.shape[-1])[:, channel] == 0)}
    assert zeros == expected
    assert {name for name, _ in zeros} == set(SHAPES)  # every layer loses channels, the 100x one included
