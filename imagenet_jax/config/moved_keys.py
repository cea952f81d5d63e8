"""The flat augmentation keys that became ops of config.train_preprocess: the op to write for each old key, and
an old run's stored config translated to the new schema (for the resume drift check).

Until issue 20, eleven Keras/timm-style keys switched augmentations on, and data/inputs.py's train_chain appended
their ops to config.train_preprocess in timm's order: random_affine, autoaugment, randaugment, color_jitter,
random_erasing. `fold_moved_keys` does exactly that, so an old config gives the chain it trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_AFFINE = "random_affine(ROTATION, WIDTH_SHIFT, HEIGHT_SHIFT, ZOOM, SHEAR, FILL_MODE)"
_RANDAUGMENT = "randaugment(NUM_OPS, MAGNITUDE)"

# Each removed key -> the op of config.train_preprocess that replaces it (its arguments in capitals).
MOVED_KEYS: dict[str, str] = {
    "rotation_range": _AFFINE,
    "width_shift_range": _AFFINE,
    "height_shift_range": _AFFINE,
    "zoom_range": _AFFINE,
    "shear_range": _AFFINE,
    "fill_mode": _AFFINE,
    "autoaugment": "autoaugment('imagenet')",
    "randaugment_num_ops": _RANDAUGMENT,
    "randaugment_magnitude": _RANDAUGMENT,
    "color_jitter": "color_jitter(STRENGTH)",
    "random_erasing": "random_erasing(PROBABILITY)",
}

# The removed keys' last defaults: each switched nothing on.
OLD_DEFAULTS: dict[str, Any] = {
    "rotation_range": 0.0, "width_shift_range": 0.0, "height_shift_range": 0.0, "zoom_range": 0.0,
    "shear_range": 0.0, "fill_mode": "nearest", "autoaugment": "", "randaugment_num_ops": 0,
    "randaugment_magnitude": 9.0, "color_jitter": 0.0, "random_erasing": 0.0,
}

_AFFINE_RANGES = ("rotation_range", "width_shift_range", "height_shift_range", "zoom_range", "shear_range")
_OLD_TRAIN_PREPROCESS = "random_resized_crop|flip_lr"  # the base config's, then and now


def moved_ops(config: Mapping[str, Any]) -> list[str]:
    """The ops the old keys of `config` switched on, as train_chain wrote them (absent keys at their old defaults)."""
    old = {**OLD_DEFAULTS, **{key: _as_old_type(key, config[key]) for key in OLD_DEFAULTS if key in config}}
    ops = []
    if any(old[key] for key in _AFFINE_RANGES):
        ops.append(f"random_affine({old['rotation_range']}, {old['width_shift_range']}, "
                   f"{old['height_shift_range']}, {old['zoom_range']}, {old['shear_range']}, {old['fill_mode']!r})")
    if old["autoaugment"]:
        ops.append(f"autoaugment({old['autoaugment']!r})")
    if old["randaugment_num_ops"]:
        ops.append(f"randaugment({old['randaugment_num_ops']}, {old['randaugment_magnitude']})")
    if old["color_jitter"]:
        ops.append(f"color_jitter({old['color_jitter']})")
    if old["random_erasing"]:
        ops.append(f"random_erasing({old['random_erasing']})")
    return ops


def _as_old_type(key: str, value: Any) -> Any:
    # The old keys were typed: 10 given for a float key was 10.0 there (and in the op train_chain wrote).
    if isinstance(OLD_DEFAULTS[key], float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def fold_moved_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (e.g. a checkpoint's stored dict) with its old keys' ops appended to train_preprocess, keys dropped."""
    if not any(key in config for key in MOVED_KEYS):
        return dict(config)
    chain = config.get("train_preprocess", _OLD_TRAIN_PREPROCESS)
    ops = ([chain] if chain.strip() else []) + moved_ops(config)
    return {**{key: value for key, value in config.items() if key not in MOVED_KEYS}, "train_preprocess": "|".join(ops)}


def moved_key_message(config: Mapping[str, Any]) -> str:
    """One line naming every removed key set in `config` and the ops to append to config.train_preprocess."""
    keys = [key for key in MOVED_KEYS if key in config]  # in the table's order
    names = " and ".join(f"config.{key}" for key in keys)
    removed = f"{names} {'was' if len(keys) == 1 else 'were'} removed"
    ops = moved_ops(config)
    if ops:
        return f'{removed}: append "|{"|".join(ops)}" to config.train_preprocess.'
    values = ", ".join(f"{key}={config[key]!r}" for key in keys)
    templates = " and ".join(dict.fromkeys(f'"|{MOVED_KEYS[key]}"' for key in keys))
    return (f"{removed}: {values} switched no augmentation on, so leave {'it' if len(keys) == 1 else 'them'} out "
            f"(augmentations are ops of config.train_preprocess now: {templates}).")
