"""Optional Weights & Biases logging beside TensorBoard (config.wandb_project; empty = off), from process 0.

Every train/eval line of metrics.jsonl goes to W&B under the same "<train|eval_set>/<metric>" names TensorBoard
uses, at the same step; the config goes into the run's config; the report's figures are logged at the end.
"""

from __future__ import annotations

import os

import ml_collections

from imagenet_jax.errors import ConfigError
from imagenet_jax.storage import is_remote, run_path

WANDB_MODES = ("online", "offline")
INSTALL_HINT = "pip install 'imagenet_jax[wandb]'"


# Where results are shown, not what they are.
RESUME_SAFE_KEYS = frozenset({"wandb_project", "wandb_entity", "wandb_mode"})


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError for a bad config.wandb_mode, or config.wandb_project set without wandb installed."""
    if config.wandb_mode not in WANDB_MODES:
        raise ConfigError(f"config.wandb_mode={config.wandb_mode!r} is not one of: {', '.join(WANDB_MODES)}.")
    if config.wandb_project:
        _import_wandb()


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise ConfigError(f"config.wandb_project is set, which needs the wandb package: {INSTALL_HINT} "
                          "(or set config.wandb_project='' to log to TensorBoard only).") from None
    return wandb


class WandbLogger:
    """One W&B run for one training session: log(), log_images(), finish()."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str):
        """Starts the W&B run (files under $WANDB_DIR, else a local workdir's wandb/ folder)."""
        wandb = _import_wandb()
        directory = os.environ.get("WANDB_DIR") or (None if is_remote(workdir) else str(run_path(workdir)))
        self.run = wandb.init(project=config.wandb_project, entity=config.wandb_entity or None,
                              mode=config.wandb_mode, dir=directory, name=run_path(workdir).name,
                              config=config.to_dict(), reinit="create_new")
        self._wandb = wandb

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars named as in TensorBoard ("train/loss", "eval_test/top1") at `step`."""
        self.run.log({key: float(value) for key, value in scalars.items()}, step=int(step))

    def log_images(self, images: dict[str, str]) -> None:
        """PNG files ({name: path}) as W&B images, e.g. the report's figures."""
        if images:
            self.run.log({f"report/{name}": self._wandb.Image(path) for name, path in images.items()})

    def finish(self) -> None:
        """Closes the run (writes its files; uploads them in online mode)."""
        self.run.finish()


def create(config: ml_collections.ConfigDict | None, workdir: str, is_writer: bool) -> WandbLogger | None:
    """A WandbLogger on the writing process when config.wandb_project is set, else None."""
    if config is None or not config.get("wandb_project") or not is_writer:
        return None
    return WandbLogger(config, workdir)
