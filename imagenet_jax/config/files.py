"""Loading config files (configs/NAME.py with get_config()) outside the CLI: notebooks, benchmarks, tests."""

from __future__ import annotations

import importlib.util
import os

import ml_collections


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """Runs `get_config()` of the config file at `path`, as `--config=path` does."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"imagenet_jax_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
