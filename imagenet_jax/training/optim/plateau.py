"""Reduce-on-plateau learning rate (`config.lr_plateau`): x factor after `patience` evaluations without improvement.

The VGG paper's protocol (Simonyan & Zisserman 2015: "decreased by a factor of 10 when the validation set accuracy
stopped improving"), Keras's ReduceLROnPlateau semantics: an evaluation improves when the metric beats the best
so far by more than `min_delta` (the first one always does); after `patience` evaluations in a row without
improvement the multiplier is multiplied by `factor` and the count starts over, at most `max_reductions` times
(0: no limit). It multiplies whatever schedule is configured (constant for VGG).

The metric is "<split>/<key>" as logged in metrics.jsonl ("test/top1", "minival/loss", "test_ema/top1"), or a
bare "<key>" ("top1") of the main eval set, whatever config.eval_split resolves to.
The multiplier and the counters are arrays in the optimizer state (`scale_by_plateau`, the last transform of the
chain), so checkpoints hold them and a resumed run continues exactly; the train step logs schedule x multiplier.
The loop calls `LrPlateau.update` with each evaluation's metrics, on the host.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
import optax.tree_utils

from imagenet_jax.core import watched_metric
from imagenet_jax.core.watched_metric import resolve_mode
from imagenet_jax.errors import ConfigError

FIELDS = ("metric", "mode", "factor", "patience", "min_delta", "max_reductions")


class PlateauState(NamedTuple):
    """The learning-rate multiplier and the counters deciding the next reduction (unique field names: see below)."""

    lr_plateau_multiplier: jax.Array  # float32, 1.0 until the first reduction
    lr_plateau_best: jax.Array  # float32, NaN before the first evaluation
    lr_plateau_evaluations_without_improvement: jax.Array  # int32
    lr_plateau_reductions: jax.Array  # int32


def scale_by_plateau() -> optax.GradientTransformation:
    """update x the multiplier in its state; the multiplier changes only through `LrPlateau.update`."""

    def init(params):
        del params
        return PlateauState(jnp.ones((), jnp.float32), jnp.full((), jnp.nan, jnp.float32),
                            jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: u * state.lr_plateau_multiplier.astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)


def lr_multiplier(opt_state: Any) -> jax.Array | float:
    """The plateau multiplier in `opt_state` (1.0 when config.lr_plateau is off): the logged LR is schedule x this."""
    return optax.tree_utils.tree_get(opt_state, "lr_plateau_multiplier", 1.0)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the key for a malformed config.lr_plateau."""
    settings = config.lr_plateau
    watched_metric.check_fields(settings, "lr_plateau", FIELDS)
    watched_metric.check_watch(settings, "lr_plateau", bare_key_allowed=True)
    factor = settings.factor
    if not watched_metric.is_real(factor) or not 0 < factor < 1:
        raise ConfigError(f"config.lr_plateau.factor={factor!r} must be a number in (0, 1), e.g. 0.1.")
    for key, least in (("patience", 1), ("max_reductions", 0)):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"config.lr_plateau.{key}={value!r} must be an integer >= {least}.")


@dataclasses.dataclass(frozen=True)
class LrPlateau:
    """Decides, after each evaluation, the new multiplier and counters held in the optimizer state."""

    metric: str
    mode: str  # "max" | "min"
    factor: float
    patience: int
    min_delta: float
    max_reductions: int  # 0: no limit

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, main_split: str) -> LrPlateau | None:
        """None when config.lr_plateau.metric is "" (off); a metric without a split is `main_split`'s."""
        settings = config.lr_plateau
        if not settings.metric:
            return None
        metric = settings.metric if "/" in settings.metric else f"{main_split}/{settings.metric}"
        return cls(metric, resolve_mode(metric, settings.mode), float(settings.factor),
                   settings.patience, float(settings.min_delta), settings.max_reductions)

    def check_splits(self, splits: list[str]) -> None:
        """ConfigError up front when the metric's split is not among the evaluated `splits`."""
        watched_metric.check_split("lr_plateau", self.metric, splits)

    def next_state(self, state: PlateauState, value: float) -> PlateauState:
        """The state after an evaluation that measured `value` (host-side numbers in, numpy scalars out)."""
        multiplier, best, waited, reductions = (float(state.lr_plateau_multiplier), float(state.lr_plateau_best),
                                                int(state.lr_plateau_evaluations_without_improvement),
                                                int(state.lr_plateau_reductions))
        if watched_metric.improves(value, best, self.mode, self.min_delta):
            best, waited = value, 0
        else:
            waited += 1
            if waited >= self.patience and (self.max_reductions == 0 or reductions < self.max_reductions):
                multiplier, reductions, waited = multiplier * self.factor, reductions + 1, 0
        return PlateauState(jnp.float32(multiplier), jnp.float32(best), jnp.int32(waited), jnp.int32(reductions))

    def update(self, opt_state: Any, logged: dict[str, dict]) -> Any:
        """`opt_state` with the plateau state advanced by this evaluation's `{split: metrics}` (shardings kept)."""
        value = watched_metric.read("lr_plateau", self.metric, logged)
        current = PlateauState(*(optax.tree_utils.tree_get(opt_state, field) for field in PlateauState._fields))
        new = self.next_state(jax.device_get(current), value)
        if new.lr_plateau_reductions > current.lr_plateau_reductions:
            logging.info("%s has not improved for %d evaluations: learning rate multiplier now %.3g (reduction %d)",
                         self.metric, self.patience, float(new.lr_plateau_multiplier), int(new.lr_plateau_reductions))
        placed = {field: jax.device_put(value, getattr(getattr(current, field), "sharding", None))
                  for field, value in new._asdict().items()}
        return optax.tree_utils.tree_set(opt_state, **placed)

