"""`python -m imagenet_jax.report --workdir DIR [--compare DIR2 ...] [--out PATH] [--no_samples]`: the report command,
`python -m imagenet_jax report` (imagenet_jax/cli/report.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the report, prints index.html's path; returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("report", argv, prog="python -m imagenet_jax.report")


if __name__ == "__main__":
    sys.exit(main())
