"""`python -m imagenet_jax.tune --config FILE --space FILE --trials N --study NAME --storage URL ...`: the tune command,
`python -m imagenet_jax tune` (imagenet_jax/cli/tune.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the search (or `report`); returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("tune", argv, prog="python -m imagenet_jax.tune")


if __name__ == "__main__":
    sys.exit(main())
