"""The one place a command line becomes a run and an error becomes one line and an exit code.

UserFacingError -> `error: MESSAGE` on stderr, exit 2; the training loop's Preempted -> its message, exit 75; a
command line that does not parse -> the command's usage and `error: ...`, exit 2; a flag's old spelling -> one
line naming the new one, exit 2. The old `python -m imagenet_jax.<module>` entry points call `run_command`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence

from imagenet_jax.cli.command import (
    COMMANDS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PREEMPTED,
    EXIT_USAGE,
    EXIT_USER_ERROR,
    Command,
    OldSpellingError,
    UsageError,
)
from imagenet_jax.cli.shared import RENAMED
from imagenet_jax.errors import UserFacingError

HELP_FLAGS = ("-h", "--help")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every optional flag's help ends with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.required or not action.option_strings or action.default in (
                None, argparse.SUPPRESS):
            return text
        return f"{text} (default: {self.default_text(action)})"

    @staticmethod
    def default_text(action: argparse.Action) -> str:
        """How --help shows `action`'s default: off for a switch, '' for an empty string, none for no value."""
        default = action.default
        if isinstance(action, argparse._StoreTrueAction):
            return "on" if default else "off"
        if default == "":
            return "''"
        if default == []:
            return "none"
        return str(default).replace("%", "%%")


class CommandParser(argparse.ArgumentParser):
    """argparse with exact spellings (no abbreviations) whose errors are raised, not printed, so that they are
    reported where every other error is."""

    def __init__(self, **kwargs) -> None:
        """As ArgumentParser, with allow_abbrev=False and the HelpFormatter."""
        super().__init__(allow_abbrev=False, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str):
        """Raises UsageError(message) instead of printing and exiting."""
        raise UsageError(message)


def build_parser(command: Command, prog: str) -> CommandParser:
    """The parser of `command` (as `prog`), its subcommands listed after the flags."""
    epilog = None
    if command.subcommands:
        width = max(map(len, command.subcommands)) + 2
        epilog = "subcommands:\n" + "\n".join(f"  {name.ljust(width)}{sub.help}"
                                              for name, sub in command.subcommands.items())
        epilog += f"\n`{prog} SUBCOMMAND --help` lists a subcommand's flags."
    usage = None
    if command.run is None:
        usage = f"{prog} {{{','.join(command.subcommands)}}} [FLAGS ...]"
    parser = CommandParser(prog=prog, usage=usage, description=command.description or command.help, epilog=epilog)
    if command.add_flags is not None:
        command.add_flags(parser)
    return parser


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag `parser` accepts, as typed (--workdir, -h, ...)."""
    return set(parser._option_string_actions)


def check_old_spellings(argv: Sequence[str], parser: argparse.ArgumentParser) -> None:
    """Raises OldSpellingError for a flag spelled as before (--use_ema, --batch-size) whose new spelling `parser`
    takes."""
    known = option_strings(parser)
    for token in argv:
        if token == "--":
            return
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        if name in known:
            continue
        new = RENAMED.get(name) or "--" + name[2:].replace("-", "_")
        if new != name and new in known:
            raise OldSpellingError(f"{name} is now spelled {new} (`{parser.prog} --help` lists the flags)")


def parse(command: Command, parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """`argv` parsed for `command`, with args.argv (as given) and args.extra (unknown arguments, pass_through)."""
    argv = list(argv)
    check_old_spellings(argv, parser)
    if command.pass_through:
        head, tail = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
        args, extra = parser.parse_known_args(head)
        args.extra = [*extra, *tail]
    else:
        args = parser.parse_args(argv)
        args.extra = []
    args.argv = argv
    args.prog = parser.prog
    return args


def _exit_code(done: SystemExit) -> int:
    if done.code is None:
        return EXIT_OK
    if isinstance(done.code, int):
        return done.code
    print(done.code, file=sys.stderr)
    return 1


def _dispatch(command: Command, argv: Sequence[str], prog: str) -> int:
    if command.subcommands and argv and argv[0] in command.subcommands:
        return _dispatch(command.subcommands[argv[0]], argv[1:], f"{prog} {argv[0]}")
    parser = build_parser(command, prog)
    try:
        if command.run is None and not (argv and argv[0] in HELP_FLAGS):
            unknown = f"unknown subcommand {argv[0]!r}; " if argv else ""
            raise UsageError(f"{unknown}choose one of: {', '.join(command.subcommands)}")
        args = parse(command, parser, argv)
        code = command.run(args)
    except UsageError as error:
        if error.show_usage:
            parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as done:  # --help, or a library that exits by itself
        return _exit_code(done)
    return EXIT_OK if code is None else int(code)


def run_command(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Runs command `name` on `argv` (default sys.argv[1:]); returns the exit code. Every error is handled here."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or f"{program_name()} {name}"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any command loads TensorFlow: no C++ banner
    try:
        return _dispatch(COMMANDS.get(name), argv, prog)
    except UserFacingError as error:
        sys.stdout.flush()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        # The training loop's Preempted (a checkpoint was saved), without importing the loop (JAX) to name it.
        preempted = getattr(sys.modules.get("imagenet_jax.experiment.loop"), "Preempted", None)
        if preempted is not None and isinstance(error, preempted):
            print(str(error), file=sys.stderr)
            return EXIT_PREEMPTED
        raise


def program_name() -> str:
    """How the front door was called: `python -m imagenet_jax`, or the console script's name (imagenet-jax)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m imagenet_jax" if name in ("__main__.py", "-c", "") else name


def front_door_help(prog: str) -> str:
    """The front door's --help: usage and every command with its one-line description."""
    width = max(map(len, COMMANDS.names())) + 2
    lines = [f"usage: {prog} COMMAND [FLAGS ...]", "",
             "Train, evaluate and use image classifiers with JAX/Flax (imagenet_jax).", "", "commands:"]
    lines += [f"  {name.ljust(width)}{command.help}" for name, command in COMMANDS.items()]
    lines += ["", f"`{prog} COMMAND --help` lists a command's flags and their defaults."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The front door, `python -m imagenet_jax COMMAND ...` and `imagenet-jax COMMAND ...`; returns the exit code."""
    if argv is None:  # this process's own command line: restart with tcmalloc first (parallel/allocator.py)
        from imagenet_jax.parallel import allocator

        allocator.restart_with_tcmalloc()
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or program_name()
    if argv[:1] and argv[0] in HELP_FLAGS:
        print(front_door_help(prog))
        return EXIT_OK
    if not argv or argv[0] not in COMMANDS:
        if not argv:
            problem = "a command is required"
        elif argv[0].startswith("-"):
            problem = f"the command comes first, then its flags: {prog} COMMAND {argv[0]} ..."
        else:
            near = difflib.get_close_matches(argv[0], COMMANDS.names(), n=1)
            problem = f"unknown command {argv[0]!r}" + (f" (did you mean {near[0]}?)" if near else "")
        print(f"usage: {prog} COMMAND [FLAGS ...]\ncommands: {', '.join(COMMANDS.names())}", file=sys.stderr)
        print(f"error: {problem} (`{prog} --help` describes the commands)", file=sys.stderr)
        return EXIT_USAGE
    return run_command(argv[0], argv[1:], prog=f"{prog} {argv[0]}")
