"""`python -m imagenet_jax.train.optim`: the optimizers command, `python -m imagenet_jax optimizers`
(imagenet_jax/cli/optimizers.py): the optimizers and schedules config.optimizer.name / config.schedule.name accept."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the optimizers and schedules with their kwargs; returns the exit code."""
    from imagenet_jax.cli import run_command

    return run_command("optimizers", argv, prog="python -m imagenet_jax.train.optim")


if __name__ == "__main__":
    sys.exit(main())
