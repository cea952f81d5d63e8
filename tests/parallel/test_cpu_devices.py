"""config.cpu_devices: how many host devices a command-line CPU run splits its batch over (issue 28)."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel import cpu_devices
from tests.conftest import REPO


def test_auto_count_is_the_largest_divisor_of_every_batch_size_up_to_the_cores():
    assert cpu_devices.auto_device_count(2, (256, 0)) == 2
    assert cpu_devices.auto_device_count(2, (255, 0)) == 1  # an odd batch stays on one device, not an error
    assert cpu_devices.auto_device_count(8, (96, 64)) == 8
    assert cpu_devices.auto_device_count(8, (12, 0)) == 6
    assert cpu_devices.auto_device_count(4, (256, 100)) == 4
    assert cpu_devices.auto_device_count(4, (256, 50)) == 2  # the eval batch must divide too


def test_explicit_count_wins_and_multi_process_runs_keep_one_device_each():
    config = get_base_config()
    config.batch_size = 256
    assert cpu_devices.device_count(config, 2, multi_process=False) == 2
    assert cpu_devices.device_count(config, 2, multi_process=True) == 1
    config.cpu_devices = 3  # explicit: taken as given (validate_config then checks the batch divides)
    assert cpu_devices.device_count(config, 2, multi_process=True) == 3
    config.cpu_devices, config.batch_size, config.per_device_batch_size = 0, 255, 32
    assert cpu_devices.device_count(config, 2, multi_process=False) == 2  # the global batch is 32 per device


@pytest.mark.parametrize("value", [-1, "2", True, 1.5])
def test_a_bad_value_names_the_key(value):
    # A namespace: ml_collections itself refuses some of these types for an int key before any validator runs.
    with pytest.raises(ConfigError, match=r"config\.cpu_devices"):
        cpu_devices.validate_config(types.SimpleNamespace(cpu_devices=value))


def test_an_explicit_xla_device_count_flag_wins_and_jax_is_left_alone():
    assert cpu_devices.apply(get_base_config(),
                             environ={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}) is None


def _devices_in_fresh_process(cpu_devices_value: int, batch_size: int) -> int:
    script = (
        "from imagenet_jax.config import get_base_config\n"
        "from imagenet_jax.parallel import cpu_devices\n"
        "import jax\n"
        f"config = get_base_config(); config.cpu_devices = {cpu_devices_value}; config.batch_size = {batch_size}\n"
        "cpu_devices.apply(config, environ={})\n"
        "print(jax.device_count())\n")
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**env, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def test_applied_before_the_backend_starts_it_sets_jax_host_device_count():
    assert _devices_in_fresh_process(3, 96) == 3
    assert _devices_in_fresh_process(0, 256) == cpu_devices.auto_device_count(cpu_devices.cores(), (256,))
