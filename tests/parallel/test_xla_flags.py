"""The GPU path's default XLA flags are added only when a GPU backend is expected, never overriding the user's."""

from __future__ import annotations

from imagenet_jax.parallel import xla_flags


def test_cpu_runs_get_no_gpu_flags():
    environ = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert not xla_flags.apply_gpu_defaults(environ)
    assert environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"
    environ = {"JAX_PLATFORMS": "tpu"}
    assert not xla_flags.apply_gpu_defaults(environ)
    assert "XLA_FLAGS" not in environ


def test_gpu_runs_get_the_latency_hiding_scheduler():
    environ = {"JAX_PLATFORMS": "cuda"}
    assert xla_flags.apply_gpu_defaults(environ)
    assert environ["XLA_FLAGS"] == "--xla_gpu_enable_latency_hiding_scheduler=true"


def test_a_flag_the_user_set_wins():
    environ = {"JAX_PLATFORMS": "cuda", "XLA_FLAGS": "--xla_gpu_enable_latency_hiding_scheduler=false --foo=1"}
    xla_flags.apply_gpu_defaults(environ)
    assert environ["XLA_FLAGS"] == "--xla_gpu_enable_latency_hiding_scheduler=false --foo=1"


def test_unset_platforms_follow_the_nvidia_device_node(monkeypatch):
    monkeypatch.setattr(xla_flags.os.path, "exists", lambda path: False)
    environ = {}
    assert not xla_flags.apply_gpu_defaults(environ) and environ == {}
    monkeypatch.setattr(xla_flags.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert xla_flags.apply_gpu_defaults(environ)
    assert "--xla_gpu_enable_latency_hiding_scheduler=true" in environ["XLA_FLAGS"]
