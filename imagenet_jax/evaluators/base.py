"""The evaluator contract: jit-compiled sharded steps that return sums, reduced into (metric, value) pairs.

An evaluator is built once per eval set (`config.evals.<set>`) with its validated options and an EvalContext,
and `run(state, step)` yields the set's metrics. `accumulate` is the one place that sums steps over a pass and
checks that every example of the set was scored exactly once (scored + unlabeled + skipped == examples).

An evaluator that reads the set's plain eval batches may instead declare `pass_step` (its uncompiled
step(state, batch) -> sums) and `finish(totals, step)`: then the runner scores every such evaluator of one set in
a single data pass with one compiled step, where XLA computes the shared forward pass once (runner.py), so the
per-class and calibration reports cost almost nothing beside the main evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections

from imagenet_jax.errors import ConfigError
from imagenet_jax.parallel import mesh as mesh_lib

UNCOUNTED = ("num_unlabeled", "num_skipped")  # examples in the set that no metric scores, by reason


@dataclasses.dataclass
class EvalContext:
    """What every evaluator needs from the run: the model, the mesh and shardings, where to write files."""

    config: ml_collections.ConfigDict
    model: Any
    num_classes: int
    mesh: Any
    state_sharding: Any
    local_batch_size: int
    workdir: str = ""
    process_index: int = 0
    process_count: int = 1

    @property
    def mean(self) -> tuple[float, ...]:
        """The normalization mean (0-255 units)."""
        return tuple(self.config.normalize_mean)

    @property
    def std(self) -> tuple[float, ...]:
        """The normalization std (0-255 units)."""
        return tuple(self.config.normalize_std)

    def jit(self, step: Callable) -> Callable:
        """step(state, batch) -> sums, compiled with the state's shardings, the batch split over all devices."""
        return jax.jit(step, in_shardings=(self.state_sharding, mesh_lib.batch_sharded(self.mesh)),
                       out_shardings=mesh_lib.replicated(self.mesh))


class Evaluator:
    """Base class: OPTIONS maps each option to its default; subclasses define make_step/metrics or run."""

    type_name: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, Any]] = {}
    pass_step: Callable[[Any, dict], dict] | None = None  # set by evaluators that can share a pass (see above)

    def __init__(self, name: str, eval_set, options: dict, context: EvalContext, where: str = ""):
        """Keeps the set, its options (defaults filled in), the run context and the config key it comes from
        (`where`: config.evals.<name>, or config.main_eval for the main set)."""
        self.name, self.eval_set, self.context = name, eval_set, context
        self.where = where or f"config.evals.{name}"
        self.options = {**self.OPTIONS, **options}
        self._batches = None

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """ConfigError naming `where` (default config.evals.<name>).<key> for an unknown option; subclasses check
        values too."""
        unknown = sorted(set(options) - set(cls.OPTIONS))
        where = where or f"config.evals.{name}"
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not an option of evaluator {cls.type_name!r} "
                              f"(its options: {', '.join(sorted(cls.OPTIONS)) or 'none'}).")

    def batches(self) -> Iterator[dict]:
        """One pass over this process's share of the set, at the run's eval preprocessing (override to change)."""
        if self._batches is None:
            from imagenet_jax.data import inputs

            self._batches = inputs.eval_stream(
                self.context.config, self.eval_set, local_batch_size=self.context.local_batch_size,
                process_index=self.context.process_index, process_count=self.context.process_count)
        return self._batches()

    def run(self, state, step: int) -> Iterator[tuple[str, float]]:
        """Yields (metric, value) pairs of `state` on the set (a pass of `pass_step`, then `finish`, by default)."""
        if self.pass_step is None:
            raise NotImplementedError
        if getattr(self, "_compiled_pass_step", None) is None:
            self._compiled_pass_step = self.context.jit(self.pass_step)
        yield from self.finish(self.accumulate(self._compiled_pass_step, state), step)

    def finish(self, totals: dict, step: int) -> Iterator[tuple[str, float]]:
        """(metric, value) pairs from the host sums of `pass_step` over the set (writing any report files)."""
        raise NotImplementedError

    def accumulate(self, step_fn: Callable, state, batches: Iterator[dict] | None = None) -> dict:
        """Sums of step_fn(state, global batch) over one pass, on the host; raises unless every example counted."""
        totals = sum_over_pass(step_fn, state, batches if batches is not None else self.batches(), self.context.mesh)
        return self.checked(totals if totals is not None else {"num_examples": 0})

    def checked(self, totals: dict) -> dict:
        """`totals`, after checking that they count every example of the set exactly once."""
        count = int(totals["num_examples"])
        uncounted = {key: int(totals[key]) for key in UNCOUNTED if key in totals}
        if count + sum(uncounted.values()) != self.eval_set.num_examples:
            raise RuntimeError(f"eval of {self.name} ({self.type_name}) scored {count} examples of "
                               f"{self.eval_set.num_examples} ({uncounted})")
        return totals

    def output_dir(self, step: int) -> str:
        """WORKDIR/eval/<set>/<step>, where file-writing evaluators put their reports."""
        return f"{self.context.workdir.rstrip('/')}/eval/{self.name}/{step}"


def sum_over_pass(step_fn: Callable, state, batches: Iterator[dict], mesh) -> Any:
    """Host sums of step_fn(state, global batch) over the batches (None when there are none)."""
    totals = None
    for local_batch in batches:
        sums = step_fn(state, mesh_lib.global_batch(local_batch, mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return jax.device_get(totals) if totals is not None else None


def count_metrics(totals: dict) -> dict[str, int]:
    """num_examples plus the non-zero uncounted counts, as the eval lines log them."""
    out = {"num_examples": int(totals["num_examples"])}
    out.update({key: int(totals[key]) for key in UNCOUNTED if key in totals and int(totals[key])})
    return out


def scored_mask(batch: dict) -> jax.Array:
    """Examples that count: real (mask=True) and, with ReaL label sets, labeled."""
    mask = batch["mask"]
    if "label_set" in batch:
        mask = mask & jnp.any(batch["label_set"] >= 0, axis=-1)
    return mask


def count_sums(batch: dict, mask: jax.Array) -> dict:
    """num_examples and, where the batch says, the unlabeled and skipped counts."""
    sums = {"num_examples": jnp.sum(mask.astype(jnp.int32))}
    if "label_set" in batch:
        sums["num_unlabeled"] = jnp.sum((batch["mask"] & ~mask).astype(jnp.int32))
    if "skipped" in batch:
        sums["num_skipped"] = jnp.sum(batch["skipped"].astype(jnp.int32))
    return sums


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically (local path or bucket URL)."""
    import json

    from imagenet_jax.storage import run_path, write_text_atomically

    target = run_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(target, json.dumps(payload, indent=1))


def write_text(path: str, text: str) -> None:
    """Writes text atomically (local path or bucket URL)."""
    from imagenet_jax.storage import run_path, write_text_atomically

    target = run_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(target, text)
