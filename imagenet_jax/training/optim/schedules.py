"""Learning-rate schedules by name, each after a linear warmup from 0 (config.schedule.warmup_epochs).

A schedule is `factory(peak, timeline, *, kwargs...)` returning lr(step) for steps after the warmup; steps
are optimizer updates counted from the start of training, so epoch boundaries (step, exponential) are
absolute, and the decaying shapes (cosine, linear, polynomial, one_cycle) run from the end of warmup to the
last update. The warmup rises linearly from 0 at step 0 to the schedule's value at the end of warmup.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import optax

from imagenet_jax.errors import ConfigError
from imagenet_jax.training.optim.registry import Registry

SCHEDULES = Registry("schedule", reserved=("peak", "timeline"))


@dataclasses.dataclass(frozen=True)
class Timeline:
    """The run in optimizer updates: warmup length, total, and updates per epoch (fractional when accumulating)."""

    warmup_steps: int
    total_steps: int
    steps_per_epoch: float

    def progress(self, step: jnp.ndarray) -> jnp.ndarray:
        """Fraction of the post-warmup updates done at `step`, clipped to [0, 1]."""
        span = max(self.total_steps - self.warmup_steps, 1)
        return jnp.clip((step - self.warmup_steps) / span, 0.0, 1.0)


def create(name: str, kwargs: dict, peak: float, timeline: Timeline) -> optax.Schedule:
    """lr(step): linear warmup from 0 over timeline.warmup_steps, then the schedule `name` with `kwargs`."""
    decay = SCHEDULES.get(name)(peak, timeline, **kwargs)
    warmup = timeline.warmup_steps

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        if warmup == 0:
            return decay(step)
        return jnp.where(step < warmup, decay(jnp.float32(warmup)) * step / warmup, decay(step))

    return schedule


def _non_negative(name: str, kwargs: dict, *keys: str) -> None:
    for key in keys:
        if kwargs[key] < 0:
            raise ConfigError(f"config.schedule.kwargs.{key}={kwargs[key]} must be >= 0 ({name} schedule).")


def _positive(name: str, kwargs: dict, *keys: str) -> None:
    for key in keys:
        if kwargs[key] <= 0:
            raise ConfigError(f"config.schedule.kwargs.{key}={kwargs[key]} must be > 0 ({name} schedule).")


@SCHEDULES.register("constant")
def constant(peak: float, timeline: Timeline):
    """The peak rate throughout."""
    return lambda step: jnp.full_like(step, peak, dtype=jnp.float32)


def _check_step(kwargs: dict, warmup_epochs: float) -> None:
    boundaries = tuple(kwargs["boundaries_epochs"])
    key = "config.schedule.kwargs.boundaries_epochs"
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in boundaries):
        raise ConfigError(f"{key}={boundaries!r} must be numbers of epochs.")
    if list(boundaries) != sorted(set(boundaries)):
        raise ConfigError(f"{key}={boundaries!r} must increase strictly.")
    inside = [b for b in boundaries if b <= warmup_epochs or b <= 0]
    if inside:
        raise ConfigError(f"{key}={boundaries!r}: {inside[0]} is not after the warmup "
                          f"(config.schedule.warmup_epochs={warmup_epochs}); every boundary must come later.")
    _positive("step", kwargs, "factor")


@SCHEDULES.register("step", check=_check_step)
def step(peak: float, timeline: Timeline, *, boundaries_epochs: tuple = (30.0, 60.0, 80.0), factor: float = 0.1):
    """Multistep: the peak times factor**(number of boundaries_epochs passed)."""
    boundaries = jnp.asarray([round(epoch * timeline.steps_per_epoch) for epoch in boundaries_epochs], jnp.float32)

    def schedule(step):
        passed = jnp.sum(step[..., None] >= boundaries, axis=-1)
        return peak * jnp.power(jnp.float32(factor), passed)

    return schedule


def _check_exponential(kwargs: dict, warmup_epochs: float) -> None:
    _positive("exponential", kwargs, "rate", "every_epochs")


@SCHEDULES.register("exponential", check=_check_exponential)
def exponential(peak: float, timeline: Timeline, *, rate: float = 0.94, every_epochs: float = 2.0,
                staircase: bool = True):
    """peak * rate**(epoch / every_epochs), the exponent floored with staircase (Inception-v3: 0.94 every 2)."""

    def schedule(step):
        periods = step / timeline.steps_per_epoch / every_epochs
        return peak * jnp.power(jnp.float32(rate), jnp.floor(periods) if staircase else periods)

    return schedule


def _check_end_value(kwargs: dict, warmup_epochs: float) -> None:
    _non_negative("decay", kwargs, "end_value")


@SCHEDULES.register("cosine", check=_check_end_value)
def cosine(peak: float, timeline: Timeline, *, end_value: float = 0.0):
    """Half a cosine from peak to end_value over the updates after warmup (Loshchilov & Hutter, no restarts)."""
    return lambda step: end_value + (peak - end_value) * 0.5 * (1 + jnp.cos(jnp.pi * timeline.progress(step)))


@SCHEDULES.register("linear", check=_check_end_value)
def linear(peak: float, timeline: Timeline, *, end_value: float = 0.0):
    """Straight line from peak to end_value over the updates after warmup."""
    return lambda step: end_value + (peak - end_value) * (1 - timeline.progress(step))


def _check_polynomial(kwargs: dict, warmup_epochs: float) -> None:
    _non_negative("polynomial", kwargs, "end_value")
    _positive("polynomial", kwargs, "power")


@SCHEDULES.register("polynomial", check=_check_polynomial)
def polynomial(peak: float, timeline: Timeline, *, power: float = 2.0, end_value: float = 0.0):
    """end_value + (peak - end_value) (1 - progress)**power (MLPerf ResNet's LARS recipe: power 2)."""
    return lambda step: end_value + (peak - end_value) * jnp.power(1 - timeline.progress(step), power)


def _check_one_cycle(kwargs: dict, warmup_epochs: float) -> None:
    if not 0 < kwargs["pct_start"] < 1:
        raise ConfigError(f"config.schedule.kwargs.pct_start={kwargs['pct_start']} must be in (0, 1).")
    _positive("one_cycle", kwargs, "div_factor", "final_div_factor")


@SCHEDULES.register("one_cycle", check=_check_one_cycle)
def one_cycle(peak: float, timeline: Timeline, *, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4):
    """Smith's one-cycle, PyTorch OneCycleLR's cosine form: up from peak/div_factor, then far down.

    Rises to the peak over pct_start of the updates after warmup, then falls to peak/(div_factor x final_div_factor).
    """
    start, final = peak / div_factor, peak / (div_factor * final_div_factor)

    def anneal(begin, end, fraction):  # half a cosine from begin (fraction 0) to end (fraction 1)
        return end + (begin - end) * 0.5 * (1 + jnp.cos(jnp.pi * jnp.clip(fraction, 0.0, 1.0)))

    def schedule(step):
        progress = timeline.progress(step)
        rising = anneal(start, peak, progress / pct_start)
        falling = anneal(peak, final, (progress - pct_start) / (1 - pct_start))
        return jnp.where(progress < pct_start, rising, falling)

    return schedule
