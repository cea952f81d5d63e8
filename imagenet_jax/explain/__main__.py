"""`python -m imagenet_jax.explain --workdir DIR [--split SPLIT | --images FILE ...] [--methods M,...]`: the explain
command, `python -m imagenet_jax explain` (imagenet_jax/cli/explain.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Explains a checkpoint's predictions and prints the checks; returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("explain", argv, prog="python -m imagenet_jax.explain")


if __name__ == "__main__":
    sys.exit(main())
