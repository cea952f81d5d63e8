"""Proof that a checkpoint holds what was saved: fingerprints of the state, CRCs of the JSON we write, and an audit
of the files Orbax parses before anything is restored.

Orbax and TensorStore detect most damage themselves (a missing or truncated file, an unparsable manifest), but
not all of it: one flipped byte inside compressed array data can decode to other numbers, and one inside a JSON
file can still parse. So every save records, in its meta, a fingerprint of each array (two wrapping uint32 sums
of its raw bits, one position-weighted, computed on the devices where the array lives: no host copy) and a CRC
of the meta itself; the metrics file Orbax writes beside it carries its own CRC. A restore recomputes and
compares them: a mismatch is proof of damage. Checkpoints written before this existed have none and are
trusted as before.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import jax
import jax.numpy as jnp

META_CRC = "meta_crc32"  # CRC of the meta's canonical JSON (everything but this key)
STATE_FINGERPRINTS = "state_fingerprints"  # {array path: "sum:weighted_sum"} of the saved state
METRICS_CRC = "crc32"  # CRC of the metrics file's other keys


class DamageFound(Exception):
    """A checkpoint file whose content provably differs from what was saved (the message names it)."""


def _canonical(value: Any) -> str:
    # The JSON round trip first: what is on disk has string keys and lists where the saver had ints and tuples.
    return json.dumps(json.loads(json.dumps(value)), sort_keys=True, separators=(",", ":"))


def _crc(value: Any) -> int:
    return zlib.crc32(_canonical(value).encode())


def _raw_words(leaf: jax.Array) -> jax.Array:
    """The array's bits as uint32 words (narrower types widened, 8-byte types split in two)."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    if leaf.dtype == jnp.bool_:
        return leaf.astype(jnp.uint32)
    bits = jnp.dtype(leaf.dtype).itemsize * 8
    if bits == 64:
        return jax.lax.bitcast_convert_type(leaf, jnp.uint32)
    return jax.lax.bitcast_convert_type(leaf, jnp.dtype(f"uint{bits}")).astype(jnp.uint32)


def _fingerprint(leaf: jax.Array) -> jax.Array:
    words = _raw_words(jnp.asarray(leaf))
    # The linear index from broadcast iotas rather than a reshape, which would regather a sharded array.
    index = jnp.zeros(words.shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(words.ndim)):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, words.shape, axis) * jnp.uint32(stride % (1 << 32))
        stride *= words.shape[axis]
    weights = index * jnp.uint32(2) + jnp.uint32(1)  # odd: any change of one word changes the weighted sum
    return jnp.stack([jnp.sum(words, dtype=jnp.uint32), jnp.sum(words * weights, dtype=jnp.uint32)])


_fingerprints = jax.jit(lambda tree: jax.tree.map(_fingerprint, tree))


def state_fingerprints(state: Any) -> dict[str, str]:
    """{array path: fingerprint} of a pytree of arrays, computed where the arrays live."""
    paths = [_path_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    values = jax.device_get(jax.tree.leaves(_fingerprints(state)))
    return {path: f"{int(value[0]):08x}:{int(value[1]):08x}" for path, value in zip(paths, values)}


def _path_name(path: tuple) -> str:
    # "params/head/kernel" whether the tree is the training loop's TrainState or the dict Orbax restores it as.
    return "/".join(str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key)))) for key in path)


def seal_meta(meta: dict, state: Any) -> dict:
    """`meta` plus the state's fingerprints and a CRC of the whole, as written into a checkpoint."""
    sealed = {**meta, STATE_FINGERPRINTS: state_fingerprints(state)}
    return {**sealed, META_CRC: _crc(sealed)}


def open_meta(meta: dict, where: str) -> tuple[dict, dict[str, str] | None]:
    """(meta as the run saved it, the state's fingerprints or None for an older checkpoint); DamageFound when
    its CRC does not match."""
    meta = dict(meta)
    crc = meta.pop(META_CRC, None)
    if crc is not None and crc != _crc(meta):
        raise DamageFound(f"{where}: its content does not match its CRC")
    return meta, meta.pop(STATE_FINGERPRINTS, None)


def check_state(state: Any, expected: dict[str, str] | None, where: str) -> None:
    """DamageFound naming the first array of a restored `state` whose fingerprint differs from the saved one."""
    if expected is None:
        return
    actual = state_fingerprints(state)
    for path, fingerprint in actual.items():
        if expected.get(path, fingerprint) != fingerprint:
            raise DamageFound(f"{where}: the restored array {path} does not match its fingerprint")


def seal_metrics(metrics: dict | None) -> dict | None:
    """`metrics` plus a CRC, as Orbax writes them into the checkpoint's metrics file."""
    return None if metrics is None else {**metrics, METRICS_CRC: _crc(metrics)}


def check_metrics_text(text: str | bytes, where: str, keys: frozenset[str]) -> None:
    """DamageFound when a checkpoint's metrics file does not parse, lacks "top1" (Orbax's manager reads it as it
    opens the directory) or does not match its CRC; `keys` are all the metric names a checkpoint without a CRC
    (written before CRCs existed) may hold, so that one flipped byte in the CRC's own name is caught too."""
    try:
        metrics = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DamageFound(f"{where}: unparsable ({type(error).__name__}: {error})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("top1"), (int, float)):
        raise DamageFound(f'{where}: no number under "top1"')
    crc = metrics.pop(METRICS_CRC, None)
    if crc is None and not set(metrics) <= keys:
        raise DamageFound(f"{where}: unknown keys {sorted(set(metrics) - keys)}")
    if crc is not None and crc != _crc(metrics):
        raise DamageFound(f"{where}: its content does not match its CRC")
