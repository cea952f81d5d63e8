"""EMA of the weights (train/ema.py): the decay schedule and the average after k steps against the closed form."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from imagenet_jax.core import ema
from imagenet_jax.core.state import create_train_state
from tests.training.toy_classifier import Toy, all_weights, toy_batch, toy_train_step


def test_ema_after_k_steps_equals_the_closed_form_for_weights_and_batch_statistics():
    decay, steps = 0.8, 4
    state = create_train_state(Toy(), optax.sgd(0.5), jax.random.key(0), (2, 2, 1), with_ema=True)
    history = [all_weights(state)]  # p_0 (the EMA starts there), then p_1 .. p_k
    train_step = toy_train_step(ema_decay=decay)
    for index in range(steps):
        state, _ = train_step(state, toy_batch(index), jax.random.key(0))
        history.append(all_weights(state))
    # e_k = d^k p_0 + (1 - d) sum_{i=1..k} d^(k-i) p_i
    expected = [decay**steps * history[0][leaf] + (1 - decay) * sum(
        decay ** (steps - i) * history[i][leaf] for i in range(1, steps + 1)) for leaf in range(len(history[0]))]
    averaged = [np.asarray(leaf) for leaf in jax.tree.leaves(state.ema)]
    assert len(averaged) == 6  # BN mean and var; BN scale and bias, Dense kernel and bias
    assert not np.allclose(history[-1][0], history[0][0])  # the weights did move
    for got, want in zip(averaged, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ema_warmup_uses_the_decays_one_plus_t_over_ten_plus_t_until_the_set_decay():
    np.testing.assert_allclose([float(ema.decay_at(t, 0.99, True)) for t in range(4)], [0.1, 2 / 11, 0.25, 4 / 13])
    np.testing.assert_allclose([float(ema.decay_at(t, 0.2, True)) for t in range(4)], [0.1, 2 / 11, 0.2, 0.2])
    assert float(ema.decay_at(5, 0.99, False)) == pytest.approx(0.99)

    state = create_train_state(Toy(), optax.sgd(0.5), jax.random.key(0), (2, 2, 1), with_ema=True)
    expected = all_weights(state)
    train_step = toy_train_step(ema_decay=0.2, ema_warmup=True)
    for index, decay in enumerate([0.1, 2 / 11, 0.2]):
        state, _ = train_step(state, toy_batch(index), jax.random.key(0))
        expected = [decay * old + (1 - decay) * new for old, new in zip(expected, all_weights(state), strict=True)]
    for got, want in zip(jax.tree.leaves(state.ema), expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_without_ema_the_state_carries_none():
    state = create_train_state(Toy(), optax.sgd(0.5), jax.random.key(0), (2, 2, 1))
    state, _ = toy_train_step()(state, toy_batch(0), jax.random.key(0))
    assert state.ema is None
