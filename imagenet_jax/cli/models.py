"""models: list the registered models with their parameter count, multiply-accumulates per image and resolution.

    python -m imagenet_jax models [--json] [--models a,b]
"""

from __future__ import annotations

import argparse
import json

from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """models' flags."""
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, params, gmacs, image_size}")
    parser.add_argument("--models", default="", metavar="NAME,...",
                        help="comma-separated model names; '': all registered")


def run(args: argparse.Namespace) -> int:
    """Prints the accounting of the models as a table, or as JSON."""
    from imagenet_jax.models import accounting

    costs = accounting.model_costs([name for name in args.models.split(",") if name] or None)
    print(json.dumps([cost.as_dict() for cost in costs], indent=1) if args.json else accounting.format_table(costs))
    return 0


COMMAND = register("models", Command(
    help="list the models: parameters, GMACs per image, native resolution", add_flags=add_flags,
    run=run, description=__doc__))
