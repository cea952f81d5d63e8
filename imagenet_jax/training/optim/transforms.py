"""Per-leaf gradient transformations the optax library lacks: decay and scaling by path rules, LARS's trust ratio.

Each takes functions from the parameter tree to per-leaf Python values (param_rules.per_leaf), so a rule of
0 compiles to nothing rather than a multiply by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

PerLeaf = Callable[[Any], Any]  # parameter tree -> tree of Python floats (or bools)


def add_decayed_weights(rates: PerLeaf) -> optax.GradientTransformation:
    """update + rate * param per leaf (rate 0 leaves the update alone)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("weight decay needs the parameters: call update(grads, state, params)")
        decayed = jax.tree.map(lambda u, p, r: u + r * p if r else u, updates, params, rates(params))
        return decayed, state

    return optax.GradientTransformation(optax.init_empty_state, update)


def scale_per_leaf(multipliers: PerLeaf) -> optax.GradientTransformation:
    """update * multiplier per leaf (per-parameter learning-rate multipliers when last in the chain)."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, m: u if m == 1.0 else u * m, updates, multipliers(updates)), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def scale_by_lars(rates: PerLeaf, adapted: PerLeaf, trust_coefficient: float,
                  eps: float) -> optax.GradientTransformation:
    """MLPerf ResNet's LARS: (g + wd w) x trust_coefficient ||w|| / (||g|| + wd ||w|| + eps) on adapted leaves.

    The ratio is 1 where ||w|| or ||g|| is 0; leaves not adapted get g + wd w unscaled.
    """

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("LARS needs the parameters: call update(grads, state, params)")

        def leaf(g, w, rate, adapt):
            decayed = g + rate * w if rate else g
            if not adapt:
                return decayed
            w_norm, g_norm = jnp.linalg.norm(w.ravel()), jnp.linalg.norm(g.ravel())
            ratio = trust_coefficient * w_norm / (g_norm + rate * w_norm + eps)
            ratio = jnp.where((w_norm > 0) & (g_norm > 0), ratio, 1.0)
            return decayed * ratio.astype(decayed.dtype)

        return jax.tree.map(leaf, updates, params, rates(params), adapted(params)), state

    return optax.GradientTransformation(optax.init_empty_state, update)
