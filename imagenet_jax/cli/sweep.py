"""sweep: train every variant of a paper config (configs/papers/), emit cluster jobs, report the paper's table.

    python -m imagenet_jax sweep --config configs/papers/resnet_table2.py --workdir DIR [--variants a,b]
        [--emit commands|slurm] [--config.KEY=VALUE ...] [-- MORE TRAIN ARGUMENTS ...]
    python -m imagenet_jax sweep report DIR

Each variant trains in DIR/VARIANT through the train command; arguments the sweep does not know (e.g.
--config.num_epochs=2), and all after a lone `--`, are passed to every variant's training. Rerunning skips finished
variants and resumes an interrupted one.
"""

from __future__ import annotations

import argparse
import os

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """sweep's flags."""
    parser.add_argument("--config", required=True, metavar="FILE.py", help="a paper config (configs/papers/NAME.py)")
    shared.WORKDIR.add(parser, required=True, help="the sweep's directory: each variant trains in WORKDIR/VARIANT")
    parser.add_argument("--variants", default="", metavar="NAME,...",
                        help="comma-separated subset; '': all, in order")
    parser.add_argument("--emit", choices=("commands", "slurm"),
                        help="write jobs (WORKDIR/commands.sh, WORKDIR/sweep.sbatch) instead of running them")


def run(args: argparse.Namespace) -> int:
    """Runs the variants in turn, or writes their jobs."""
    from imagenet_jax.sweep import runner

    requested = [name for name in args.variants.split(",") if name]
    if args.emit is None:
        return runner.run_sweep(args.config, args.workdir, requested, args.extra)
    if args.emit == "commands":
        text = runner.emit_commands(args.config, args.workdir, requested, args.extra)
        path = os.path.join(args.workdir, "commands.sh")
    else:
        text = runner.emit_slurm(args.config, args.workdir, requested, args.extra)
        path = os.path.join(args.workdir, "sweep.sbatch")
    with open(path, "w") as stream:
        stream.write(text)
    print(text, end="")
    print(f"wrote {path}")
    return 0


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """sweep report's arguments."""
    parser.add_argument("sweep_dir", metavar="DIR", help="the sweep's --workdir")


def run_report(args: argparse.Namespace) -> int:
    """Writes DIR/table.md and DIR/curves.png and prints the table."""
    from imagenet_jax.sweep import report

    table, curves = report.write_report(args.sweep_dir)
    with open(table) as stream:
        print(stream.read())
    print(f"wrote {table} and {curves}")
    return 0


COMMAND = register("sweep", Command(

    help="train every variant of a paper config, emit cluster jobs, report table.md and curves.png (report)",
    add_flags=add_flags, run=run, description=__doc__, pass_through=True,
    subcommands={"report": Command(help="DIR/table.md (the paper's figures beside ours) and DIR/curves.png",
                                   add_flags=add_report_flags, run=run_report, description=__doc__)}))
