"""optimizers: list the optimizers and learning-rate schedules config.optimizer.name and config.schedule.name accept,
with their keyword arguments and defaults.

    python -m imagenet_jax optimizers
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli.command import Command, register


def _describe(registry, name: str) -> str:
    arguments = ", ".join(f"{key}={parameter.default!r}" for key, parameter in registry.accepted(name).items())
    summary = (registry.get(name).__doc__ or "").strip().splitlines()[0]
    return f"  {name}({arguments})\n      {summary}"


def listing() -> str:
    """The optimizers (registered, then optax's by name) and schedules, with their kwargs."""
    from imagenet_jax.training.optim import OPTIMIZERS, SCHEDULES
    from imagenet_jax.training.optim.optimizers import optax_names

    others = [name for name in optax_names() if not OPTIMIZERS.is_registered(name)]
    return "\n".join([
        "config.optimizer.name (with config.optimizer.kwargs):",
        *(_describe(OPTIMIZERS, name) for name in OPTIMIZERS.names()),
        f"  and any optax optimizer, kwargs as in its signature: {', '.join(others)}",
        "config.schedule.name (with config.schedule.warmup_epochs and config.schedule.kwargs):",
        *(_describe(SCHEDULES, name) for name in SCHEDULES.names()),
    ])


def run(args: argparse.Namespace) -> int:
    """Prints the listing."""
    print(listing())
    return 0


COMMAND = register("optimizers", Command(
    help="list the optimizers and learning-rate schedules, with their kwargs", run=run,
    description=__doc__))
