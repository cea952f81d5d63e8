"""What a command is (name -> help, add-flags function, run function), the table of commands and the exit codes."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping

from imagenet_jax.errors import EXIT_PREEMPTED  # noqa: F401  (one of the exit codes: re-exported)
from imagenet_jax.registry import Registry

EXIT_OK = 0
EXIT_USAGE = 2  # a command line that does not parse (argparse's own code)
EXIT_USER_ERROR = 2  # imagenet_jax.errors.UserFacingError: a config, data, run or checkpoint problem, one line
# EXIT_PREEMPTED = 75 (imagenet_jax/errors.py): training saved a checkpoint on SIGTERM/SIGINT; rerun to resume
EXIT_INTERRUPTED = 130  # Ctrl-C outside training (which saves and exits EXIT_PREEMPTED instead)


class UsageError(Exception):
    """The command line is wrong: printed with the command's usage, exit code EXIT_USAGE."""

    show_usage = True


class OldSpellingError(UsageError):
    """A flag spelled as before the one front door: one line naming the new spelling, no usage."""

    show_usage = False


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of `python -m imagenet_jax COMMAND` / `imagenet-jax COMMAND`.

    `add_flags(parser)` declares its flags (the shared ones through imagenet_jax.cli.shared); `run(args)` does the
    work and returns the exit code (None: 0), raising UserFacingError for problems the user can fix and UsageError
    for a wrong command line; both become one line on stderr in one place (imagenet_jax.cli.dispatch). `args.argv`
    holds the command's own arguments as given, `args.prog` how it was called. With `pass_through`, arguments
    the parser does not know, and all after a lone `--`, are collected in `args.extra` instead of being refused
    (train and sweep hand them on). `subcommands` (e.g. `compress report`) are chosen by the first argument;
    without `run`, one is required.
    """

    help: str  # one line, listed by the front door's --help
    add_flags: Callable[[argparse.ArgumentParser], None] | None = None
    run: Callable[[argparse.Namespace], int | None] | None = None
    description: str = ""  # shown at the top of the command's --help (default: `help`)
    pass_through: bool = False
    subcommands: Mapping[str, Command] = dataclasses.field(default_factory=dict)


# Every module of this package that defines a command registers it here; the front door imports them all on its
# first lookup (they load JAX and TensorFlow only when their command runs).
COMMANDS: Registry[Command] = Registry("command", discover="imagenet_jax.cli")


def register(name: str, command: Command) -> Command:
    """Adds `command` to the front door under `name`; a name registered twice is refused."""
    return COMMANDS.register(name, command)
