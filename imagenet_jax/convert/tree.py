"""Assembling converted variables and checking them against the model they are meant for."""

from __future__ import annotations

from typing import Any

import numpy as np

from imagenet_jax import models
from imagenet_jax.models import accounting

Variables = dict[str, dict[str, Any]]


def to_numpy(value: Any) -> np.ndarray:
    """A float32 numpy copy of an array-like (numpy, torch tensor, TF/Keras variable)."""
    if hasattr(value, "detach"):  # torch tensors: leave autograd and the device first
        value = value.detach().cpu()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.array(value, dtype=np.float32)


def put(variables: Variables, collection: str, path: tuple[str, ...], leaf: str, value: np.ndarray) -> None:
    """Stores `value` at variables[collection][path...][leaf], refusing to overwrite."""
    node = variables.setdefault(collection, {})
    for part in path:
        node = node.setdefault(part, {})
    if leaf in node:
        raise ValueError(f"two source weights map to {collection}/{'/'.join(path)}/{leaf}")
    node[leaf] = value


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'collection/module/.../leaf': leaf} for a nested dict."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `flatten`."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *path, leaf = key.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def check_matches_model(variables: Variables, name: str, **options: Any) -> None:
    """Raises ValueError unless `variables` has exactly the names and shapes `create(name, **options)` expects."""
    model = models.create(name, **options)
    expected = flatten(accounting.abstract_variables(model, models.default_image_size(name)))
    expected = {key: tuple(leaf.shape) for key, leaf in expected.items()}
    actual = {key: tuple(np.shape(leaf)) for key, leaf in flatten(variables).items()}
    missing = sorted(expected.keys() - actual.keys())
    unexpected = sorted(actual.keys() - expected.keys())
    mismatched = [
        f"{key}: converted {actual[key]} vs model {expected[key]}"
        for key in sorted(expected.keys() & actual.keys())
        if expected[key] != actual[key]
    ]
    if missing or unexpected or mismatched:
        problems = [f"missing {missing[:8]}" if missing else "", f"unexpected {unexpected[:8]}" if unexpected else ""]
        problems += mismatched[:8]
        raise ValueError(
            f"converted weights do not fit {name}({options}): "
            + "; ".join(p for p in problems if p)
            + f" ({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mismatched)"
        )
