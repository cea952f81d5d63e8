"""imagenet_jax: train image classifiers with JAX/Flax. The Python API (imagenet_jax/api.py) loads on first use:

    imagenet_jax.config.get(path, overrides)   imagenet_jax.train(config, workdir)   imagenet_jax.load_run(workdir)
    imagenet_jax.load_sweep(sweep_dir)         # means over seeds with 95% intervals, as `sweep report` shows
"""

from __future__ import annotations

import importlib

_API = {"load_run", "load_sweep", "Run", "RestoredState"}


def train(config, workdir, overrides=None) -> dict:
    """Trains `config` (a ConfigDict or "path.py[:variant]") in `workdir`, resuming like the CLI (imagenet_jax.api)."""
    from imagenet_jax.api import train as train_in_process

    return train_in_process(config, workdir, overrides)


def __getattr__(name: str):
    # Lazy, so `import imagenet_jax` (and every CLI) stays cheap: JAX and TensorFlow load when first needed.
    if name in _API:
        return getattr(importlib.import_module("imagenet_jax.api"), name)
    if name == "config":
        return importlib.import_module("imagenet_jax.config")
    raise AttributeError(f"module 'imagenet_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_API, "config", "train"])
