"""The old `python -m imagenet_jax.<module>` entry points keep working: each hands its command line to the front
door (imagenet_jax/cli). They are where a process starts, not something the module they sit in depends on, so the
front door is looked up by name when one runs; the layer contract (ARCHITECTURE.md) rightly does not count them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence


def forward(command: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Runs front-door `command` on `argv` (default sys.argv[1:]) under usage name `prog`; returns its exit code."""
    if argv is None:  # this process's own command line: the process starts here
        importlib.import_module("imagenet_jax.parallel.allocator").restart_with_tcmalloc()
    return importlib.import_module("imagenet_jax.cli").run_command(command, argv, prog=prog)
