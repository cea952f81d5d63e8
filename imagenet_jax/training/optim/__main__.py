"""`python -m imagenet_jax.training.optim`: the optimizers command, `python -m imagenet_jax optimizers`
(imagenet_jax/cli/optimizers.py): the optimizers and schedules config.optimizer.name / config.schedule.name accept."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the optimizers and schedules with their kwargs; returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("optimizers", argv, prog="python -m imagenet_jax.training.optim")


if __name__ == "__main__":
    sys.exit(main())
