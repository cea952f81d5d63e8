"""`config.profile_steps = (start, stop)`: a jax.profiler trace of train steps start..stop (inclusive).

The trace lands in WORKDIR/plugins/profile/<timestamp>/, where TensorBoard's profile plugin
(`tensorboard-plugin-profile`, installed with the package) shows it: `tensorboard --logdir WORKDIR`, tab PROFILE.
"""

from __future__ import annotations

import logging
from typing import Any

import jax

# Reporting only: what is measured, not what a step computes.
RESUME_SAFE_KEYS = frozenset({"peak_flops_per_device", "profile_steps"})


def validate_config(config: Any) -> None:
    """ConfigError naming config.profile_steps / config.peak_flops_per_device when malformed."""
    from imagenet_jax.errors import ConfigError

    steps = tuple(config.profile_steps)
    if steps and (len(steps) != 2 or not all(isinstance(step, int) for step in steps)
                  or not 1 <= steps[0] <= steps[1]):
        raise ConfigError(f"config.profile_steps={steps!r} must be () (off) or two train steps (start, stop) with "
                          "1 <= start <= stop, e.g. (10, 20).")
    if not isinstance(config.peak_flops_per_device, int | float) or config.peak_flops_per_device < 0:
        raise ConfigError(f"config.peak_flops_per_device={config.peak_flops_per_device!r} must be a number >= 0 "
                          "(FLOP/s; 0: the table for GPUs/TPUs, a matmul probe on CPU).")


class ProfileWindow:
    """Starts a trace before step `start` and stops it after step `stop` (once the step's outputs are ready)."""

    def __init__(self, steps: tuple[int, ...], logdir: str):
        """`steps` is () (never trace) or (start, stop); the trace goes to `logdir`/plugins/profile."""
        self.start, self.stop = tuple(steps) if steps else (0, -1)
        self.logdir = logdir
        self.active = False

    def before_step(self, step: int) -> None:
        """Starts tracing when `step` is the first profiled step."""
        if step == self.start and not self.active:
            jax.profiler.start_trace(self.logdir)
            self.active = True
            logging.info("profiling train steps %d-%d into %s/plugins/profile", self.start, self.stop, self.logdir)

    def after_step(self, step: int, outputs: Any) -> None:
        """Stops tracing after the last profiled step has finished on the device."""
        if self.active and step >= self.stop:
            jax.block_until_ready(outputs)
            self.close()

    def close(self) -> None:
        """Stops a running trace (a run that ends or fails inside the window still writes it)."""
        if self.active:
            jax.profiler.stop_trace()
            self.active = False
