"""train: train a config into a workdir (resumes it; SIGTERM saves a checkpoint and exits 75).

    python -m imagenet_jax train --config configs/NAME.py[:VARIANT] [--workdir DIR] [--config.KEY=VALUE ...]
        [--eval NAME=TYPE[,key=value...] ...]

The classic form, `python -m imagenet_jax.main --config ...`, is the same command. The flags are absl flags
(imagenet_jax/cli/train_flags.py): absl parses the command line, as ml_collections' --config.KEY=VALUE needs.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, UsageError, register

METAVARS = {"coordinator_address": "HOST:PORT", "num_processes": "N", "process_id": "I", "eval": "NAME=TYPE,..."}
EPILOG = """config overrides:
  --config.KEY=VALUE    any key of the config, nested ones dotted (--config.schedule.warmup_epochs=0); every key,
                        its default and a comment: imagenet_jax/config/base.py"""


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The absl flags of imagenet_jax/cli/train_flags.py, mirrored for --help and a first check of the line."""
    from absl import flags

    from imagenet_jax.cli import train_flags

    parser.epilog = EPILOG
    for name, holder in train_flags.TRAIN_FLAGS.items():
        flag, text = flags.FLAGS[holder.name], train_flags.HELP[name]
        if name == shared.WORKDIR.name:
            shared.WORKDIR.add(parser, help=text)
        elif name == "config":
            parser.add_argument("--config", required=True, metavar="FILE.py[:VARIANT]", help=text)
        elif isinstance(flag, flags.MultiFlag):
            parser.add_argument(f"--{name}", action="append", default=[], metavar=METAVARS[name], help=text)
        else:
            choices = getattr(flag.parser, "enum_values", None)
            kind = int if isinstance(flag.parser, flags.IntegerParser) else None
            parser.add_argument(f"--{name}", default=flag.default, type=kind, choices=choices,
                                metavar=None if choices else METAVARS.get(name, "VALUE"), help=text)


def unknown_override(argv: list[str]) -> str | None:
    """The message for the first --config.KEY=VALUE in `argv` whose KEY is not in the config, or None."""
    from imagenet_jax.cli.dispatch import CommandParser
    from imagenet_jax.config.files import load_config_file

    parser = CommandParser()
    parser.add_argument("--config")
    known, _ = parser.parse_known_args(argv[1:])
    config = load_config_file(known.config)
    for argument in argv:
        if not argument.startswith("--config."):
            continue
        key = argument.split("=", 1)[0][len("--config."):]
        node = config
        for depth, part in enumerate(key.split(".")):
            if not hasattr(node, "keys"):
                break
            if part not in node:
                missing = ".".join(key.split(".")[:depth + 1])
                if depth == 0:  # a key that moved (e.g. an augmentation key, now an op) or a misspelled one
                    from imagenet_jax.experiment.validate import unknown_key_message

                    value = argument.partition("=")[2]
                    return f"{argument}: {unknown_key_message({**config, part: _literal(value)}, part)}"
                return (f"{argument}: config.{missing} is not a key of {known.config} (every key, with its default: "
                        "imagenet_jax/config/base.py)")
            node = node[part]
    return None


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run(args: argparse.Namespace) -> int:
    """Hands the command line to absl (which parses --config and its overrides) and runs imagenet_jax.main.main."""
    from absl import app, flags

    from imagenet_jax import main as classic
    from imagenet_jax.config.files import split_config_argument

    path, _ = split_config_argument(args.config)
    if not os.path.isfile(path):  # ml_collections would only say so at the config's first use, in a traceback
        raise UsageError(f"--config {args.config}: no such file {path}")

    def parse_flags(argv: list[str]) -> list[str]:
        try:
            remaining = flags.FLAGS(argv)
        except flags.Error as error:
            raise UsageError(" ".join(str(error).split())) from None
        except (AttributeError, KeyError):  # ml_collections' way of saying that an override names no key
            unknown = unknown_override(argv)
            if unknown is None:
                raise
            raise UsageError(unknown) from None
        if len(remaining) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(remaining[1:])}")
        return remaining

    saved_argv = sys.argv
    sys.argv = [args.prog, *args.argv]  # ml_collections reads the --config.KEY overrides from sys.argv
    try:
        app.run(classic.main, argv=sys.argv, flags_parser=parse_flags)
    except SystemExit as done:  # app.run ends with sys.exit(main(argv))
        if done.code not in (None, 0):
            raise
    finally:
        sys.argv = saved_argv
    return 0


COMMAND = register("train", Command(
    help="train a config into a workdir (--config FILE.py[:VARIANT], --config.KEY=VALUE overrides)",
    add_flags=add_flags, run=run, description=__doc__, pass_through=True))
