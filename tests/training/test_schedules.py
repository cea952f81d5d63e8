"""Learning-rate schedules at chosen steps against their closed forms, worked out by hand below.

The run: 10 steps per epoch, 100 steps, peak 0.1 x 512/256 = 0.2 (linear scaling) unless a test says otherwise.
"""

from __future__ import annotations

import math

import ml_collections
import pytest

from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.training import optim

STEPS_PER_EPOCH, TOTAL_STEPS = 10, 100


def _config(name: str, warmup_epochs: float = 2.0, batch_size: int = 512, reference: int = 256,
            accumulation: int = 1, **kwargs) -> ml_collections.ConfigDict:
    config = get_base_config()
    config.batch_size, config.learning_rate, config.lr_reference_batch_size = batch_size, 0.1, reference
    config.grad_accumulation_steps = accumulation
    config.schedule = ml_collections.ConfigDict({"name": name, "warmup_epochs": warmup_epochs, "kwargs": kwargs})
    validate_config(config)
    return config


def _lr(config: ml_collections.ConfigDict, *steps: int, steps_per_epoch: int = STEPS_PER_EPOCH,
        total_steps: int = TOTAL_STEPS) -> list[float]:
    _, schedule = optim.create(config, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    return [float(schedule(step)) for step in steps]


def test_linear_warmup_rises_from_zero_to_the_batch_scaled_peak():
    # warmup 2 epochs = 20 steps to peak 0.2: lr(s) = 0.2 s / 20.
    assert _lr(_config("cosine"), 0, 5, 10, 19, 20) == pytest.approx([0.0, 0.05, 0.1, 0.19, 0.2], rel=1e-6)


def test_cosine_after_warmup_with_and_without_batch_scaling():
    # t = (s - 20) / 80; lr = peak (1 + cos(pi t)) / 2.
    expected = [0.2, 0.1 * (1 + math.cos(math.pi / 4)), 0.1, 0.0]
    assert _lr(_config("cosine"), 20, 40, 60, 100) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    # lr_reference_batch_size=0: no scaling, peak = learning_rate = 0.1 whatever the batch.
    assert _lr(_config("cosine", reference=0), 10, 60) == pytest.approx([0.05, 0.05], rel=1e-6)
    # batch 128 at reference 256 halves the peak: 0.05.
    assert _lr(_config("cosine", batch_size=128), 20, 60) == pytest.approx([0.05, 0.025], rel=1e-6)


def test_cosine_end_value_is_the_floor():
    # lr = 0.01 + (0.2 - 0.01)(1 + cos(pi t)) / 2 at t = 1/2 and t = 1.
    assert _lr(_config("cosine", end_value=0.01), 60, 100) == pytest.approx([0.105, 0.01], rel=1e-5)


def test_step_schedule_multiplies_by_factor_at_each_absolute_epoch_boundary():
    config = _config("step", boundaries_epochs=(4, 7), factor=0.1)
    assert _lr(config, 10, 39, 40, 69, 70, 99) == pytest.approx([0.1, 0.2, 0.02, 0.02, 0.002, 0.002], rel=1e-5)
    unscaled = _config("step", warmup_epochs=0.0, reference=0, boundaries_epochs=(4, 7), factor=0.5)
    assert _lr(unscaled, 0, 40, 70) == pytest.approx([0.1, 0.05, 0.025], rel=1e-6)


@pytest.mark.parametrize("boundaries", [(1.0, 30.0), (2.0, 30.0)])
def test_step_boundary_inside_warmup_is_an_error_naming_the_key(boundaries):
    with pytest.raises(ConfigError, match=r"config\.schedule\.kwargs\.boundaries_epochs.*warmup_epochs=2\.0"):
        _config("step", boundaries_epochs=boundaries)


def test_step_boundaries_must_increase():
    with pytest.raises(ConfigError, match=r"boundaries_epochs=\(60, 30\) must increase"):
        _config("step", boundaries_epochs=(60, 30))


def test_exponential_per_epoch_staircase_and_continuous():
    # 0.2 x 0.5 ** floor(epoch / 3): epochs 2.9, 3.0, 6.5 -> exponents 0, 1, 2.
    config = _config("exponential", warmup_epochs=0.0, rate=0.5, every_epochs=3.0)
    assert _lr(config, 0, 29, 30, 65) == pytest.approx([0.2, 0.2, 0.1, 0.05], rel=1e-6)
    continuous = _config("exponential", warmup_epochs=0.0, rate=0.5, every_epochs=3.0, staircase=False)
    assert _lr(continuous, 15) == pytest.approx([0.2 * 0.5**0.5], rel=1e-6)


def test_warmup_rises_to_the_schedules_value_at_its_end():
    # GoogLeNet-style decay already under way when a 2-epoch warmup ends: 0.2 x 0.5 ** 2 = 0.05 at step 20.
    config = _config("exponential", rate=0.5, every_epochs=1.0)
    assert _lr(config, 10, 20, 30) == pytest.approx([0.025, 0.05, 0.025], rel=1e-6)


def test_polynomial_power_two_to_its_end_value_and_linear():
    # 0.001 + (0.2 - 0.001)(1 - t)^2 at t = 1/2 (step 60): 0.05075.
    config = _config("polynomial", power=2.0, end_value=0.001)
    assert _lr(config, 20, 60, 100) == pytest.approx([0.2, 0.05075, 0.001], rel=1e-5)
    assert _lr(_config("linear"), 40, 60, 100) == pytest.approx([0.15, 0.1, 0.0], rel=1e-5, abs=1e-7)


def test_constant_holds_the_peak_after_warmup():
    assert _lr(_config("constant"), 10, 20, 99) == pytest.approx([0.1, 0.2, 0.2], rel=1e-6)


def test_one_cycle_up_from_peak_over_div_then_down_to_the_final_rate():
    # start 0.2/25 = 0.008; peak at 30% (step 30); final 0.008/1e4; halfway up/down by the cosine: the means.
    config = _config("one_cycle", warmup_epochs=0.0)
    expected = [0.008, (0.008 + 0.2) / 2, 0.2, (0.2 + 8e-7) / 2, 8e-7]
    assert _lr(config, 0, 15, 30, 65, 100) == pytest.approx(expected, rel=1e-5)


def test_accumulation_counts_updates_and_scales_by_the_accumulated_batch():
    # 4 micro-batches of 128 per update: the same updates, peak and cosine as one batch of 512, and train
    # step s logs the rate of update s // 4.
    config = _config("cosine", batch_size=128, accumulation=4)
    micro = _lr(config, 0, 43, 80, 243, 399, steps_per_epoch=4 * STEPS_PER_EPOCH, total_steps=4 * TOTAL_STEPS)
    assert micro == pytest.approx(_lr(_config("cosine"), 0, 10, 20, 60, 99), rel=1e-6)


def test_schedule_kwargs_are_checked_against_the_signature():
    with pytest.raises(ConfigError, match=r"config\.schedule\.kwargs\.boundaries is not an argument of schedule "
                                          r"'step'; it accepts: boundaries_epochs=\(30\.0, 60\.0, 80\.0\), "
                                          r"factor=0\.1"):
        _config("step", boundaries=(30, 60))
    with pytest.raises(ConfigError, match=r"config\.schedule\.name='cosin' is not a registered schedule\. Did you mean "
                                          r"cosine\? Registered: constant, cosine, exponential, linear, one_cycle, "
                                          r"polynomial, step\."):
        _config("cosin")
    with pytest.raises(ConfigError, match=r"config\.schedule\.kwargs\.staircase='yes' must be of the same kind"):
        _config("exponential", staircase="yes")
    with pytest.raises(ConfigError, match=r"config\.schedule\.kwargs\.pct_start=1\.5 must be in \(0, 1\)"):
        _config("one_cycle", pct_start=1.5)
