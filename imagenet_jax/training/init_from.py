"""Starting from pretrained weights (config.init_from): a converted file or one of our checkpoints.

Every parameter and BN statistic whose path and shape match is loaded; a classifier whose class count differs
is re-initialized; anything else that differs in shape is an error listing it. `config.init_from_layers` (regexes
over '/'-joined paths such as "block1_conv1/.*") loads only the arrays it selects, each of which the checkpoint
must hold, and keeps the fresh initialization of the rest (VGG's nets B-E from net A: its first four convolutions
and three FC layers, configs/papers/vgg_table3.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from etils import epath
from flax import traverse_util

from imagenet_jax.errors import ConfigError
from imagenet_jax.storage import is_remote, run_path
from imagenet_jax.storage.layout import RunLayout


def load_pretrained(path: str) -> dict[str, Any]:
    """{"params", "batch_stats"} from a converted-weights file, a workdir, a checkpoints dir or a step dir.

    Any of them may be local or in a bucket (gs://...).
    """
    location = run_path(path)
    if location.is_file():
        from imagenet_jax.convert import load_converted

        if not is_remote(location):
            return load_converted(os.fspath(location))
        with tempfile.TemporaryDirectory() as local:  # the converted-file reader takes local paths
            copy = os.path.join(local, location.name)
            with open(copy, "wb") as stream:
                stream.write(location.read_bytes())
            return load_converted(copy)
    state = _restore_on_host(_find_step_dir(location, path))
    return {"params": state["params"], "batch_stats": state.get("batch_stats", {})}


def _restore_on_host(step_dir: epath.Path) -> dict[str, Any]:
    """A checkpoint's state as host arrays, whatever device count saved it, checked against its fingerprints."""
    import jax
    import orbax.checkpoint as ocp

    from imagenet_jax.training import checkpoint_integrity as integrity
    from imagenet_jax.training.checkpointing import host_target

    checkpointer = ocp.StandardCheckpointer()
    stored = checkpointer.metadata(step_dir / "state").item_metadata
    state = checkpointer.restore(step_dir / "state", host_target(stored))
    meta_file = step_dir / "meta" / "metadata"
    if meta_file.exists():  # a step dir copied without its meta still loads; one with it must match it
        try:
            _, fingerprints = integrity.open_meta(json.loads(meta_file.read_text()), str(meta_file))
            integrity.check_state(dict(state), fingerprints, str(step_dir / "state"))
        except (integrity.DamageFound, ValueError) as error:
            raise ConfigError(f"config.init_from: the checkpoint {step_dir} is damaged ({error}); name another step "
                              "directory (DIR/checkpoints/<step>) or another run.") from None
    return jax.device_get(dict(state))


def _find_step_dir(location: epath.Path, path: str) -> epath.Path:
    if (location / "state").is_dir():
        return location
    for directory in (RunLayout(location).checkpoints, location):
        if directory.is_dir():
            steps = sorted((int(child.name) for child in directory.iterdir() if child.name.isdigit()), reverse=True)
            if steps:
                return directory / str(steps[0])
    raise ConfigError(f"config.init_from={path!r} is neither a converted-weights file nor a directory with "
                      "checkpoints (DIR/checkpoints/<step>/state).")


def merge_pretrained(initial: dict[str, Any], pretrained: dict[str, Any], num_classes: int,
                     layers: Sequence[str] = ()) -> dict[str, Any]:
    """Returns `initial` with every matching pretrained array loaded (only those whose path a regex of `layers`
    matches, when given); logs loaded, skipped, kept and new entries."""
    targets = {collection: traverse_util.flatten_dict(dict(initial.get(collection, {})), sep="/")
               for collection in ("params", "batch_stats")}
    _check_layers(layers, [path for target in targets.values() for path in target])
    merged, loaded, new, reinitialized, mismatched, kept, missing = {}, [], [], [], [], [], []
    used = set()
    for collection, target in targets.items():
        source = traverse_util.flatten_dict(dict(pretrained.get(collection, {}) or {}), sep="/")
        result = {}
        for path, value in target.items():
            name = f"{collection}/{path}"
            if layers and not any(re.fullmatch(pattern, path) for pattern in layers):
                result[path], _ = value, kept.append(name)  # not selected: its fresh initialization
                continue
            if path not in source:
                result[path], _ = value, (missing if layers else new).append(name)
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
    if missing:
        raise ConfigError(f"config.init_from_layers selects {len(missing)} arrays the checkpoint lacks: "
                          + ", ".join(missing[:20]))
    logging.info("init_from: loaded %d arrays, re-initialized %d (classifier: %s), %d new (not in the checkpoint)%s",
                 len(loaded), len(reinitialized), ", ".join(reinitialized) or "none", len(new),
                 f": {', '.join(new[:20])}" if new else "")
    if layers:
        logging.info("init_from: %d arrays not selected by config.init_from_layers keep their fresh initialization",
                     len(kept))
    return merged


def _check_layers(layers: Sequence[str], paths: Sequence[str]) -> None:
    """ConfigError naming each regex of config.init_from_layers that selects no array of the model."""
    unmatched = [pattern for pattern in layers if not any(re.fullmatch(pattern, path) for path in paths)]
    if unmatched:
        modules = sorted({path.rpartition("/")[0] for path in paths})
        raise ConfigError(f"config.init_from_layers: {', '.join(map(repr, unmatched))} selects no array of this model; "
                          f"its layers: {', '.join(modules)} (a regex matches whole paths, e.g. 'block1_conv1/.*').")
