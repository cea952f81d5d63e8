"""Members of an ensemble or ingredients of a soup, named on the command line as DIR[:CHECKPOINT].

CHECKPOINT is best (the default), latest, a step, or lastN: the newest N checkpoints of the run, each a member (a
snapshot ensemble, Huang et al. 2017). Every member must classify the same classes of the same dataset, so that
their outputs can be averaged; they may differ in architecture and input size.
"""

from __future__ import annotations

import dataclasses
import re

import ml_collections

from imagenet_jax.errors import ConfigError

LAST_N = re.compile(r"last(\d+)$")


@dataclasses.dataclass(frozen=True)
class Member:
    """One checkpoint of one run: its config, eval-mode variables (host arrays) and where it came from."""

    workdir: str
    step: int
    config: ml_collections.ConfigDict
    variables: dict  # {"params", "batch_stats"}
    num_classes: int

    @property
    def name(self) -> str:
        """DIR:STEP, as tables and logs name it."""
        return f"{self.workdir.rstrip('/')}:{self.step}"


def split_spec(spec: str) -> tuple[str, str]:
    """ "DIR[:CHECKPOINT]" -> (DIR, CHECKPOINT or "best"); a gs:// URL keeps its own colon."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and "/" not in tail:
        return head, tail
    return spec, "best"


def load_members(specs: list[str], use_ema: bool = False, what: str = "--ensemble") -> list[Member]:
    """The members the specs name, in order (lastN expands to N members, oldest first)."""
    from imagenet_jax.runs import load_run

    if not specs:
        raise ConfigError(f"{what} needs at least one DIR[:CHECKPOINT].")
    members = []
    for spec in specs:
        workdir, checkpoint = split_spec(spec)
        run = load_run(workdir)
        for step in _steps(run, checkpoint, spec, what):
            restored = run.restore(step)
            members.append(Member(workdir, restored.step, run.config, restored.variables(use_ema), run.num_classes))
    check_compatible(members, what)
    return members


def _steps(run, checkpoint: str, spec: str, what: str) -> list[int | str]:
    last = LAST_N.match(checkpoint)
    if not last:
        return [checkpoint]
    count, steps = int(last.group(1)), run.steps()
    if count < 1 or count > len(steps):
        raise ConfigError(f"{what} {spec}: {checkpoint} needs 1 to {len(steps)} checkpoints; {run.workdir} has "
                          f"{steps}.")
    return steps[-count:]


def check_compatible(members: list[Member], what: str) -> None:
    """ConfigError unless every member scores the same classes of the same dataset (and no checkpoint twice)."""
    first = members[0]
    for member in members[1:]:
        if member.config.dataset != first.config.dataset or member.num_classes != first.num_classes:
            raise ConfigError(f"{what}: {member.name} classifies {member.num_classes} classes of "
                              f"{member.config.dataset!r}, {first.name} {first.num_classes} of "
                              f"{first.config.dataset!r}; members must share their classes.")
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ConfigError(f"{what}: {', '.join(repeated)} named twice (weights are an option: --ensemble_weights).")
