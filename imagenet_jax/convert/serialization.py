"""Converted weights on disk: one msgpack file (flax.serialization) with the variables and the model they fit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from flax import serialization

from imagenet_jax.convert.tree import Variables

FORMAT_VERSION = 1


def save_converted(
    variables: Mapping[str, Any],
    path: str,
    model_name: str | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> None:
    """Writes `{"params", "batch_stats"}` (and optionally the `create()` name/options they fit) to `path`."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name or "", "options": dict(model_options or {})},
        "variables": _as_numpy(variables),
    }
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as stream:
        stream.write(serialization.msgpack_serialize(payload))
    os.replace(temporary, path)  # never leave a half-written file under the final name


def load_converted(path: str, with_model: bool = False) -> Variables | tuple[Variables, dict[str, Any]]:
    """Reads variables written by `save_converted`; with `with_model`, also `{"name", "options"}` stored beside them."""
    with open(path, "rb") as stream:
        payload = serialization.msgpack_restore(stream.read())
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a converted-weights file (format {payload.get('format_version')!r})")
    variables = payload["variables"]
    return (variables, payload["model"]) if with_model else variables


def _as_numpy(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {str(key): _as_numpy(value) for key, value in tree.items()}
    return np.asarray(tree)
