"""`python -m imagenet_jax.compress report|quantize ...`: the compress command, `python -m imagenet_jax compress`
(imagenet_jax/cli/compress.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the subcommand; returns the exit code (2: no run, no checkpoint or a missing extra)."""
    from imagenet_jax.entry_points import forward

    return forward("compress", argv, prog="python -m imagenet_jax.compress")


if __name__ == "__main__":
    sys.exit(main())
