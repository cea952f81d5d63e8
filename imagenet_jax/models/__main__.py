"""`python -m imagenet_jax.models [--json] [--models a,b]`: the models command, `python -m imagenet_jax models`
(imagenet_jax/cli/models.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the accounting of the registered models; returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("models", argv, prog="python -m imagenet_jax.models")


if __name__ == "__main__":
    sys.exit(main())
