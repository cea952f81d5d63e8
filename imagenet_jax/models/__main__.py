"""`python -m imagenet_jax.models [--json] [--models a,b]`: parameters and GMACs of the registered models."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from imagenet_jax.models import accounting


def main(argv: Sequence[str] | None = None) -> None:
    """Prints the accounting of the registered models as a table, or as JSON with `--json`."""
    parser = argparse.ArgumentParser(prog="python -m imagenet_jax.models", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, params, gmacs, image_size}")
    parser.add_argument("--models", default="", help="comma-separated model names (default: all registered)")
    args = parser.parse_args(argv)
    names = [name for name in args.models.split(",") if name] or None
    costs = accounting.model_costs(names)
    if args.json:
        print(json.dumps([cost.as_dict() for cost in costs], indent=1))
    else:
        print(accounting.format_table(costs))


if __name__ == "__main__":
    main()
