"""Magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune") as an optax wrapper whose state holds the masks.

config.pruning (imagenet_jax/config/base.py) turns it on; `imagenet_jax.training.optim.create` appends `prune` as the
last transform, so the masks live in TrainState.opt_state: checkpointed, resumed and sharded like the params.

Schedule: from `begin_step` to `end_step` the masks are recomputed every `frequency` optimizer updates (and at
`end_step` itself) with sparsity s_t = s_f + (s_i - s_f) (1 - (t - t0) / (end - t0))^3, where t counts updates
(the train step, or train steps / grad_accumulation_steps when accumulating); before t0 nothing is pruned, after
`end_step` the masks are frozen at s_f. Step t is the one whose *result* (the params saved at step t) has sparsity s_t.

Each update is masked (pruned weights get no update) and the weights pruned at this step are sent to exactly zero
(the update is -param there), so params hold exact zeros wherever the mask is 0.
Scope "layer" prunes round(s * n) weights of each prunable kernel; "global" ranks all prunable weights together.
Structure "channel" prunes whole output channels (the last axis of conv HWIO and dense (in, out) kernels) by their
L2 norm; globally, by L2 norm relative to their layer's mean channel norm (so a layer's fan-in does not decide
its share); s is then the fraction of output channels pruned, not of weights.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel.mesh import leaf_path
from imagenet_jax.registry import Registry

# config.pruning.method ("" is off): method(config.pruning, total_updates) -> the optax transform that prunes.
PRUNING_METHODS: Registry[Callable[[ml_collections.ConfigDict, int], optax.GradientTransformation]] = Registry(
    "pruning method", config_key="pruning.method", also=' or "" (off)')
SCOPES = ("global", "layer")
STRUCTURES = ("unstructured", "channel")
FIELDS = ("method", "target_sparsity", "initial_sparsity", "begin_step", "end_step", "frequency", "scope",
          "structure", "include", "exclude")


class PruningState(NamedTuple):
    """Masks (1 keeps, 0 prunes; a scalar 1 for leaves never pruned) and the number of updates applied so far."""

    masks: Any
    count: jax.Array


def polynomial_sparsity(step, *, initial: float, target: float, begin: int, end: int):
    """Zhu & Gupta's s_t = s_f + (s_i - s_f)(1 - (t - t0)/(end - t0))^3, 0 before `begin`, s_f after `end`."""
    progress = jnp.clip((jnp.asarray(step, jnp.float32) - begin) / max(end - begin, 1), 0.0, 1.0)
    sparsity = target + (initial - target) * (1.0 - progress) ** 3
    return jnp.where(jnp.asarray(step) < begin, 0.0, sparsity)


def is_mask_update_step(step, *, begin: int, end: int, frequency: int):
    """True at begin, begin + frequency, ... up to end, and at end itself."""
    step = jnp.asarray(step)
    return (step >= begin) & (step <= end) & (((step - begin) % frequency == 0) | (step == end))


def prunable_paths(params: Any, include, exclude) -> dict[str, bool]:
    """{path: prunable} over the leaves of `params`: kernels (ndim >= 2) whose path fully matches an include regex
    and no exclude regex."""
    flags = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = leaf_path(path)
        flags[name] = (jnp.ndim(leaf) >= 2 and any(re.fullmatch(p, name) for p in include)
                       and not any(re.fullmatch(p, name) for p in exclude))
    return flags


def prune(*, target_sparsity: float, initial_sparsity: float = 0.0, begin_step: int = 0, end_step: int,
          frequency: int = 100, scope: str = "global", structure: str = "unstructured",
          include=(r".*kernel",), exclude=(r"stem.*", r"head/.*")) -> optax.GradientTransformation:
    """The pruning transform: apply it after the optimizer (it needs `params` in `update`)."""
    schedule = dict(initial=initial_sparsity, target=target_sparsity, begin=begin_step, end=end_step)

    def init(params):
        flags = prunable_paths(params, include, exclude)
        if not any(flags.values()):
            raise ConfigError(f"config.pruning.include={tuple(include)!r} (minus exclude={tuple(exclude)!r}) matches "
                              f"no kernel; parameter paths are e.g. {', '.join(list(flags)[:4])}.")

        def mask(path, leaf):
            return jnp.ones_like(leaf) if flags[leaf_path(path)] else jnp.ones((), jnp.float32)

        return PruningState(masks=jax.tree_util.tree_map_with_path(mask, params), count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("prune() needs the params: call optimizer.update(grads, state, params)")
        step = state.count + 1  # the train step whose result these params become
        masked = jax.tree.map(lambda u, m: u * m.astype(u.dtype), updates, state.masks)
        candidate = jax.tree.map(lambda p, u: p + u, params, masked)  # pruned weights stay exactly 0
        sparsity = polynomial_sparsity(step, **schedule)
        masks = jax.lax.cond(is_mask_update_step(step, begin=begin_step, end=end_step, frequency=frequency),
                             lambda: compute_masks(candidate, state.masks, sparsity, scope, structure),
                             lambda: state.masks)
        # Kept weights get the masked update; pruned ones -param, so param + update is exactly 0.
        new_updates = jax.tree.map(lambda u, p, m: jnp.where(m > 0, u, -p).astype(u.dtype), masked, params, masks)
        return new_updates, PruningState(masks=masks, count=state.count + 1)

    return optax.GradientTransformation(init, update)


def compute_masks(params: Any, previous_masks: Any, sparsity, scope: str, structure: str) -> Any:
    """Masks pruning round(sparsity x n) of the prunable weights (or output channels) of smallest magnitude."""
    leaves, treedef = jax.tree.flatten(params)
    old = jax.tree.leaves(previous_masks)
    prunable = [index for index, mask in enumerate(old) if mask.ndim]
    scores = [_scores(leaves[index], structure) for index in prunable]
    if scope == "layer":
        keeps = [_keep_smallest_pruned(score, sparsity) for score in scores]
    else:
        flat = jnp.concatenate([score.reshape(-1) for score in scores])
        keep_flat = _keep_smallest_pruned(flat, sparsity)
        keeps, offset = [], 0
        for score in scores:
            keeps.append(keep_flat[offset:offset + score.size].reshape(score.shape))
            offset += score.size
    new = list(old)
    for index, keep in zip(prunable, keeps):
        new[index] = jnp.broadcast_to(keep, leaves[index].shape).astype(old[index].dtype)
    return jax.tree.unflatten(treedef, new)


def _scores(kernel: jax.Array, structure: str) -> jax.Array:
    kernel = kernel.astype(jnp.float32)
    if structure == "unstructured":
        return jnp.abs(kernel)
    norms = jnp.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0)
    # Relative to the layer's mean channel norm: under global ranking a layer's fan-in (which sets its init scale)
    # must not decide how many of its channels go; within a layer the order is the L2 norm's.
    return norms / jnp.maximum(jnp.mean(norms), jnp.finfo(jnp.float32).tiny)


def _keep_smallest_pruned(scores: jax.Array, sparsity) -> jax.Array:
    # Rank-based, not threshold-based: exactly round(s * n) entries are pruned even with ties (e.g. zeros).
    flat = scores.reshape(-1)
    count = jnp.round(sparsity * flat.size).astype(jnp.int32)
    order = jnp.argsort(flat, stable=True)
    ranks = jnp.zeros(flat.shape, jnp.int32).at[order].set(jnp.arange(flat.size, dtype=jnp.int32))
    return (ranks >= count).reshape(scores.shape)


def from_config(pruning: ml_collections.ConfigDict, total_updates: int) -> optax.GradientTransformation:
    """The transform of method config.pruning.method with config.pruning's settings."""
    return PRUNING_METHODS.get(pruning.method)(pruning, total_updates)


@PRUNING_METHODS.register("magnitude")
def magnitude(pruning: ml_collections.ConfigDict, total_updates: int) -> optax.GradientTransformation:
    """`prune(...)` with config.pruning's settings; end_step 0 means 3/4 of the run's optimizer updates."""
    end_step = pruning.end_step or max(round(0.75 * total_updates), pruning.begin_step + 1)
    return prune(target_sparsity=pruning.target_sparsity, initial_sparsity=pruning.initial_sparsity,
                 begin_step=pruning.begin_step, end_step=end_step, frequency=pruning.frequency, scope=pruning.scope,
                 structure=pruning.structure, include=tuple(pruning.include), exclude=tuple(pruning.exclude))


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the config.pruning key that is unknown or out of range."""
    pruning = config.pruning
    if not isinstance(pruning, ml_collections.ConfigDict) or set(pruning.keys()) != set(FIELDS):
        found = sorted(pruning.keys()) if isinstance(pruning, ml_collections.ConfigDict) else repr(pruning)
        raise ConfigError(f"config.pruning must have exactly the fields {', '.join(FIELDS)} (found {found}); "
                          "see imagenet_jax/config/base.py.")
    if pruning.method:
        PRUNING_METHODS.get(pruning.method)  # not a registered pruning method: one line, with close names
    for key in ("target_sparsity", "initial_sparsity"):
        value = pruning[key]
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < 1:
            raise ConfigError(f"config.pruning.{key}={value!r} must be a number in [0, 1).")
    if pruning.initial_sparsity > pruning.target_sparsity:
        raise ConfigError(f"config.pruning.initial_sparsity={pruning.initial_sparsity} must be <= "
                          f"config.pruning.target_sparsity={pruning.target_sparsity}.")
    for key, least in (("begin_step", 0), ("end_step", 0), ("frequency", 1)):
        value = pruning[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"config.pruning.{key}={value!r} must be an integer >= {least}.")
    if pruning.end_step and pruning.end_step <= pruning.begin_step:
        raise ConfigError(f"config.pruning.end_step={pruning.end_step} must be > config.pruning.begin_step="
                          f"{pruning.begin_step} (0: 3/4 of the run).")
    if pruning.scope not in SCOPES:
        raise ConfigError(f"config.pruning.scope={pruning.scope!r} is not one of: {', '.join(SCOPES)}.")
    if pruning.structure not in STRUCTURES:
        raise ConfigError(f"config.pruning.structure={pruning.structure!r} is not one of: {', '.join(STRUCTURES)}.")
    for key in ("include", "exclude"):
        patterns = pruning[key]
        if isinstance(patterns, str) or not isinstance(patterns, (tuple, list)):
            raise ConfigError(f"config.pruning.{key}={patterns!r} must be a tuple of regexes over parameter paths.")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ConfigError(f"config.pruning.{key}: {pattern!r} is not a regular expression ({error}).") from None
    if pruning.method and config.num_train_steps > 0:
        updates = config.num_train_steps // config.grad_accumulation_steps
        if pruning.begin_step >= updates or pruning.end_step > updates:
            raise ConfigError(f"config.pruning.begin_step={pruning.begin_step} / end_step={pruning.end_step} lie "
                              f"beyond the run's {updates} optimizer updates (config.num_train_steps).")
