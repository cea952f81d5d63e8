"""`python -m imagenet_jax.sweep ...`: the sweep command, `python -m imagenet_jax sweep` (imagenet_jax/cli/sweep.py).

    python -m imagenet_jax.sweep --config configs/papers/resnet_table2.py --workdir DIR [--variants a,b]
        [--emit commands|slurm] [-- MAIN OVERRIDES ...]
    python -m imagenet_jax.sweep report DIR
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Runs, emits or reports a sweep; returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("sweep", argv, prog="python -m imagenet_jax.sweep")


if __name__ == "__main__":
    sys.exit(main())
