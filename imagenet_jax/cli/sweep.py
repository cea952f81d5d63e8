"""sweep: train every variant of a paper config (configs/papers/), emit cluster jobs, report the paper's table.

    python -m imagenet_jax sweep --config configs/papers/resnet_table2.py --workdir DIR [--variants a,b]
        [--seeds N] [--emit commands|slurm] [--config.KEY=VALUE ...] [-- MORE TRAIN ARGUMENTS ...]
    python -m imagenet_jax sweep report DIR [--baseline VARIANT]

Each variant trains in DIR/VARIANT through the train command (with --seeds N > 1: N runs, DIR/VARIANT/seed_K with
--config.seed=K); arguments the sweep does not know (e.g. --config.num_epochs=2), and all after a lone `--`, are
passed to every run. Rerunning skips finished runs and resumes an interrupted one. The report gives each variant's
mean over seeds with its 95% t interval, and its difference from the baseline variant with Welch's 95% interval.
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
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="runs per variant, seeds 0..N-1 (default: the paper config's Paper.seeds, else 1)")
    parser.add_argument("--emit", choices=("commands", "slurm"),
                        help="write jobs (WORKDIR/commands.sh, WORKDIR/sweep.sbatch) instead of running them")


def run(args: argparse.Namespace) -> int:
    """Runs the variants in turn, or writes their jobs."""
    from imagenet_jax.sweep import runner

    requested = [name for name in args.variants.split(",") if name]
    if args.emit is None:
        return runner.run_sweep(args.config, args.workdir, requested, args.extra, args.seeds)
    if args.emit == "commands":
        text = runner.emit_commands(args.config, args.workdir, requested, args.extra, args.seeds)
        path = os.path.join(args.workdir, "commands.sh")
    else:
        text = runner.emit_slurm(args.config, args.workdir, requested, args.extra, args.seeds)
        path = os.path.join(args.workdir, "sweep.sbatch")
    with open(path, "w") as stream:
        stream.write(text)
    print(text, end="")
    print(f"wrote {path}")
    return 0


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """sweep report's arguments."""
    parser.add_argument("sweep_dir", metavar="DIR", help="the sweep's --workdir")
    parser.add_argument("--baseline", default="", metavar="VARIANT",
                        help="the variant the others are compared with (default: Paper.baseline, else the first)")


def run_report(args: argparse.Namespace) -> int:
    """Writes DIR/table.md, DIR/table.json and DIR/curves.png and prints the table."""
    from imagenet_jax.sweep import report

    paths = report.write_report(args.sweep_dir, args.baseline)
    with open(paths[0]) as stream:
        print(stream.read())
    print(f"wrote {', '.join(paths)}")
    return 0


COMMAND = register("sweep", Command(

    help="train every variant of a paper config, emit cluster jobs, report table.md and curves.png (report)",
    add_flags=add_flags, run=run, description=__doc__, pass_through=True,
    subcommands={"report": Command(help="DIR/table.md (means and 95% intervals over seeds, the paper's figures "
                                        "beside) and DIR/curves.png",
                                   add_flags=add_report_flags, run=run_report, description=__doc__)}))
