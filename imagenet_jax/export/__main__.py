"""`python -m imagenet_jax.export`: the export command, `python -m imagenet_jax export` (imagenet_jax/cli/export.py).

    python -m imagenet_jax.export --workdir DIR --format stablehlo|savedmodel|onnx --output PATH
        [--checkpoint best|latest|STEP] [--ema]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Exports the run; returns the exit code (2: no run, checkpoint or missing extra)."""
    from imagenet_jax.entry_points import forward

    return forward("export", argv, prog="python -m imagenet_jax.export")


if __name__ == "__main__":
    sys.exit(main())
