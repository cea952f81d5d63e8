"""The one command-line front door: `python -m imagenet_jax COMMAND [FLAGS ...]`, or `imagenet-jax COMMAND ...`.

A command is an entry of COMMANDS: name -> Command(help, add_flags, run) (imagenet_jax/cli/command.py), one module
per command in this package. Adding a command is writing its module (`COMMAND = register(NAME, Command(...))`):
the table discovers this package's modules on first use, so there is no list of commands to extend.
Flags that several commands take (--workdir, --checkpoint, --ema, --batch_size,
--data_dir) are defined once, in imagenet_jax/cli/shared.py. Errors and exit codes are handled in one place,
imagenet_jax/cli/dispatch.py. Importing this package is cheap: JAX and TensorFlow load when a command runs.
The old entry points (`python -m imagenet_jax.main`, `.evaluate`, `.predict`, ...) call `run_command`.
"""

from __future__ import annotations

from imagenet_jax.cli.command import COMMANDS, Command, UsageError, register
from imagenet_jax.cli.dispatch import main, run_command

__all__ = ["COMMANDS", "Command", "UsageError", "main", "register", "run_command"]
