"""The public Python API: what the CLI does, callable from a notebook cell without subprocesses.

    import imagenet_jax
    config = imagenet_jax.config.get("configs/default.py", {"num_epochs": 1.0})
    imagenet_jax.train(config, "runs/fmnist")     # resumes from the newest checkpoint, like the CLI
    run = imagenet_jax.load_run("runs/fmnist")    # config, metrics, checkpoints, model, inputs (runs.Run)
    sweep = imagenet_jax.load_sweep("runs/ablations")  # per variant: mean, 95% interval, Δ vs baseline
"""

from __future__ import annotations

import os

import ml_collections

from imagenet_jax.config.overrides import Overrides, apply_overrides, get
from imagenet_jax.runs import RestoredState, Run, load_run

__all__ = ["RestoredState", "Run", "get", "load_run", "load_sweep", "train"]


def train(config: ml_collections.ConfigDict | str, workdir: str | os.PathLike, overrides: Overrides = None) -> dict:
    """Trains `config` (a ConfigDict or a config file "path.py[:variant]") in `workdir`; returns the final eval.

    Same semantics as `python -m imagenet_jax.main`: an existing workdir resumes from its newest checkpoint, a
    config that changes the trajectory is refused, and SIGTERM/Ctrl-C saves a checkpoint and raises
    `imagenet_jax.experiment.loop.Preempted` (call again to continue). Config mistakes raise ConfigError.
    """
    from imagenet_jax.experiment.loop import train_and_evaluate

    if isinstance(config, str):
        config = get(config, overrides)
    elif overrides:
        config = apply_overrides(config, overrides)
    return train_and_evaluate(config, os.fspath(workdir))


def load_sweep(workdir: str | os.PathLike, baseline: str = ""):
    """`sweep report`'s numbers (a SweepReport): per variant the mean over seeds, its 95% interval and Δ vs baseline."""
    from imagenet_jax.sweep.report import collect

    return collect(os.fspath(workdir), baseline)
