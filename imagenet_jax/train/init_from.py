"""Starting from pretrained weights (config.init_from): a converted file or one of our checkpoints.

Every parameter and BN statistic whose path and shape match is loaded; a classifier whose class count differs
is re-initialized; anything else that differs in shape is an error listing it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from flax import traverse_util

from imagenet_jax.errors import ConfigError


def load_pretrained(path: str) -> dict[str, Any]:
    """{"params", "batch_stats"} from a converted-weights file, a workdir, a checkpoints dir or a step dir."""
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        from imagenet_jax.convert import load_converted

        return load_converted(path)
    step_dir = _find_step_dir(path)
    import orbax.checkpoint as ocp

    state = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "state"))
    return {"params": state["params"], "batch_stats": state.get("batch_stats", {})}


def _find_step_dir(path: str) -> str:
    if os.path.isdir(os.path.join(path, "state")):
        return path
    for directory in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(directory):
            steps = sorted((int(name) for name in os.listdir(directory) if name.isdigit()), reverse=True)
            if steps:
                return os.path.join(directory, str(steps[0]))
    raise ConfigError(f"config.init_from={path!r} is neither a converted-weights file nor a directory with "
                      "checkpoints (DIR/checkpoints/<step>/state).")


def merge_pretrained(initial: dict[str, Any], pretrained: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """Returns `initial` with every matching pretrained array loaded; logs loaded, skipped and new entries."""
    merged, loaded, new, reinitialized, mismatched = {}, [], [], [], []
    used = set()
    for collection in ("params", "batch_stats"):
        target = traverse_util.flatten_dict(dict(initial.get(collection, {})), sep="/")
        source = traverse_util.flatten_dict(dict(pretrained.get(collection, {}) or {}), sep="/")
        result = {}
        for path, value in target.items():
            name = f"{collection}/{path}"
            if path not in source:
                result[path], _ = value, new.append(name)
                continue
            used.add(name)
            candidate = np.asarray(source[path])
            if candidate.shape == value.shape:
                result[path], _ = candidate.astype(value.dtype), loaded.append(name)
            elif value.shape and value.shape[-1] == num_classes and candidate.shape[:-1] == value.shape[:-1]:
                # The classifier of another class count: keep the fresh initialization.
                result[path], _ = value, reinitialized.append(f"{name} {candidate.shape} -> {value.shape}")
            else:
                mismatched.append(f"{name}: checkpoint {candidate.shape} vs model {value.shape}")
                result[path] = value
        merged[collection] = traverse_util.unflatten_dict(result, sep="/")
        skipped = [f"{collection}/{path}" for path in source if f"{collection}/{path}" not in used]
        if skipped:
            logging.info("init_from: %d %s entries not used by this model: %s", len(skipped), collection,
                         ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""))
    if mismatched:
        raise ConfigError(f"config.init_from: {len(mismatched)} arrays do not fit this model: " + "; ".join(mismatched))
    logging.info("init_from: loaded %d arrays, re-initialized %d (classifier: %s), %d new (not in the checkpoint)%s",
                 len(loaded), len(reinitialized), ", ".join(reinitialized) or "none", len(new),
                 f": {', '.join(new[:20])}" if new else "")
    return merged
