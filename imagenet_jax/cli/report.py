"""report: write (or refresh) a run's HTML report, WORKDIR/report/index.html, and print its path.

    python -m imagenet_jax report --workdir DIR [--compare DIR2 ...] [--out PATH] [--no_samples]

One self-contained page: headline numbers, curves, best/last metrics, per-class table, confusion matrix,
reliability diagram, robustness tables, sample predictions and the config (imagenet_jax/report/).
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """report's flags."""
    shared.WORKDIR.add(parser, required=True, help="the run to report on")
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR", help="other runs whose curves are overlaid")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder; default WORKDIR/report")
    parser.add_argument("--no_samples", action="store_true", help="skip the sample images (no checkpoint restore)")


def run(args: argparse.Namespace) -> int:
    """Writes the report and prints index.html's path."""
    from imagenet_jax.report import write_report

    print(write_report(args.workdir, tuple(args.compare), args.out, samples=not args.no_samples))
    return 0


COMMAND = register("report", Command(
    help="write a run's HTML report (curves, per-class table, calibration, samples, config)",
    add_flags=add_flags, run=run, description=__doc__))
