"""Property-based fuzzing: any type-correct value of any key is either accepted or rejected by a ConfigError."""

from __future__ import annotations

import math

import ml_collections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config

BASE = get_base_config()
SCALAR_KEYS = sorted(key for key in BASE.keys() if isinstance(BASE[key], (bool, int, float, str)))


def _value_for(default):
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=-(2**40), max_value=2**40)
    if isinstance(default, float):
        return st.floats(allow_nan=True, allow_infinity=True)
    return st.one_of(st.text(max_size=30), st.sampled_from(["resnet18", "cifar10", "flip_lr|resize(8)", "(", ""]))


@st.composite
def mutated_configs(draw) -> ml_collections.ConfigDict:
    config = get_base_config()
    for key in draw(st.lists(st.sampled_from(SCALAR_KEYS), min_size=1, max_size=4, unique=True)):
        config[key] = draw(_value_for(BASE[key]))
    return config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=mutated_configs(), device_count=st.sampled_from([1, 2, 3, 8]))
def test_validation_accepts_or_names_the_problem(config, device_count):
    has_nonfinite = any(isinstance(config[k], float) and not math.isfinite(config[k]) for k in SCALAR_KEYS)
    try:
        validate_config(config, device_count=device_count)
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message
        assert "config." in message or "zero training steps" in message
    else:
        assert not has_nonfinite, "a NaN or infinite value was accepted"
        assert config.batch_size > 0 and config.batch_size % device_count == 0


@settings(max_examples=100, deadline=None)
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20))
def test_unknown_keys_are_named(key):
    config = get_base_config()
    if key in config:
        return
    config[key] = 1
    try:
        validate_config(config)
    except ConfigError as error:
        assert f"config.{key}" in str(error)
    else:
        raise AssertionError("an unknown key was accepted")
