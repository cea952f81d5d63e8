"""Model soups (Wortsman et al. 2022): one model whose weights are the average of several fine-tuned runs'.

Ingredients must share an architecture, and averaging only makes sense for runs fine-tuned from one
initialization (e.g. `init_from` the same pretrained run with different learning rates, seeds or augmentation).
`uniform` averages every ingredient. `greedy` (the paper's Algorithm 1) sorts the ingredients by their held-out
score and adds each to the soup only if the soup's held-out score does not drop. BatchNorm statistics are the
ingredients' average unless `bn_batches` > 0: then they are recomputed for the averaged weights as the mean of
the batch statistics over that many training batches (eval preprocessing, no augmentation: "precise BN").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError

METHODS = ("uniform", "greedy")


def average(variables: Sequence[dict], what: str = "--ingredients") -> dict:
    """The element-wise mean of {"params", "batch_stats"} trees of one architecture (float32 accumulation)."""
    first = flax.traverse_util.flatten_dict(variables[0], sep="/")
    for index, other in enumerate(variables[1:], start=1):
        flat = flax.traverse_util.flatten_dict(other, sep="/")
        if flat.keys() != first.keys():
            path = sorted(set(flat) ^ set(first))[0]
            raise ConfigError(f"{what}: ingredient {index} and ingredient 0 differ in their weights ({path} is in "
                              "one only); a soup needs one architecture.")
        for path, leaf in flat.items():
            if np.shape(leaf) != np.shape(first[path]):
                raise ConfigError(f"{what}: ingredient {index} has {path} of shape {np.shape(leaf)}, ingredient 0 "
                                  f"{np.shape(first[path])}; a soup needs one architecture.")
    mean = {path: (sum(np.asarray(flax.traverse_util.flatten_dict(v, sep="/")[path], np.float64) for v in variables)
                   / len(variables)).astype(np.asarray(leaf).dtype) for path, leaf in first.items()}
    return flax.traverse_util.unflatten_dict(mean, sep="/")


@dataclasses.dataclass
class GreedyStep:
    """One ingredient considered by the greedy soup: its own score, the soup's score with it, and the verdict."""

    ingredient: int
    alone: float
    with_it: float
    kept: bool


def greedy(variables: Sequence[dict], score: Callable[[dict], float]) -> tuple[list[int], list[GreedyStep]]:
    """(the ingredients kept, in the order tried; the history): Algorithm 1 of the paper, higher score better."""
    alone = [score(v) for v in variables]
    order = sorted(range(len(variables)), key=lambda index: -alone[index])
    kept, best = [order[0]], alone[order[0]]
    history = [GreedyStep(order[0], alone[order[0]], best, True)]
    for index in order[1:]:
        candidate = score(average([variables[i] for i in [*kept, index]]))
        history.append(GreedyStep(index, alone[index], candidate, candidate >= best))
        if candidate >= best:
            kept, best = [*kept, index], candidate
    return kept, history


def recompute_batch_stats(model, variables: dict, batches: Iterator[jax.Array], num_batches: int,
                          mean: Sequence[float], std: Sequence[float]) -> dict:
    """batch_stats for `variables`' params: the mean over `num_batches` uint8 image batches of each BatchNorm's
    batch statistics in training mode (any running-average update new = m * old + (1 - m) * batch works)."""
    if not variables.get("batch_stats"):
        return variables

    @jax.jit
    def updated(params, batch_stats, images):
        normalized = (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
        _, state = model.apply({"params": params, "batch_stats": batch_stats}, normalized, train=True,
                               mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
        return state["batch_stats"]

    params = variables["params"]
    zeros = jax.tree.map(jnp.zeros_like, variables["batch_stats"])
    ones = jax.tree.map(jnp.ones_like, variables["batch_stats"])
    total, share, count = None, None, 0
    for images in batches:
        if count == num_batches:
            break
        from_zeros = updated(params, zeros, images)  # (1 - m) * batch statistic
        if share is None:  # (1 - m) per leaf, read off the update rule: from ones it is m + (1 - m) * batch
            share = jax.tree.map(lambda z, o: 1.0 - (o - z), from_zeros, updated(params, ones, images))
        statistic = jax.tree.map(jnp.divide, from_zeros, share)
        total = statistic if total is None else jax.tree.map(jnp.add, total, statistic)
        count += 1
    if count < num_batches:
        raise ConfigError(f"--bn_batches={num_batches}: the training split has only {count} full batches.")
    return {**variables, "batch_stats": jax.device_get(jax.tree.map(lambda t: t / count, total))}
