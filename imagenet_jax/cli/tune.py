"""tune: a hyperparameter search with Optuna, every trial an ordinary run; `tune report` shows the study.

    python -m imagenet_jax tune --config configs/default.py --space configs/search/default.py --trials 20
        --study NAME --storage sqlite:///runs/tune/study.db [--workdir runs/tune/NAME] [--sampler tpe|random|grid|cmaes]
        [--pruner median|successive_halving|hyperband|none] [--metric SET/METRIC] [--emit slurm]
        [--config.KEY=VALUE ...]
    python -m imagenet_jax tune report --study NAME --storage URL [--workdir DIR]

Trial N trains in WORKDIR/trial_N and reports each evaluation to the study, whose pruner may stop it. Kill the
tuner at any point and rerun the same command: finished trials are kept, a running one resumes from its
checkpoint. Several tuners may share a study: on one machine through a SQLite file; across machines through a
server database (--storage postgresql://user:password@host/db or mysql+pymysql://...; SQLAlchemy's driver
installed) with WORKDIR on a shared filesystem, or with --emit slurm: an array of tuner tasks, one trial each
(imagenet_jax/tune/tuner.py).
"""

from __future__ import annotations

import argparse
import os

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, UsageError, register

SAMPLERS = ("tpe", "random", "grid", "cmaes")  # imagenet_jax/training/optuna_study.py, without importing Optuna
PRUNERS = ("median", "successive_halving", "hyperband", "none")


def _study_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, metavar="NAME", help="the study's name in the storage")
    parser.add_argument("--storage", required=True, metavar="URL",
                        help="Optuna storage, e.g. sqlite:///runs/tune/study.db or postgresql://host/db")
    shared.WORKDIR.add(parser, help="where trial_N run directories go (default runs/tune/STUDY)")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """tune's flags."""
    parser.add_argument("--config", required=True, metavar="FILE.py[:VARIANT]", help="the config every trial starts "
                        "from")
    parser.add_argument("--space", required=True, metavar="FILE.py", help="the search space (configs/search/)")
    parser.add_argument("--trials", type=int, required=True, metavar="N", help="trials the study ends with, "
                        "counting earlier ones (a rerun continues to N)")
    _study_flags(parser)
    parser.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    parser.add_argument("--pruner", default="median", choices=PRUNERS)
    parser.add_argument("--metric", default="", metavar="SET/METRIC",
                        help="what trials are scored by ('': the config's best_metric, else the main set's top1)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--emit", choices=("slurm",), help="write WORKDIR/tune.sbatch (an array of tuner tasks, one "
                        "trial each) instead of tuning here")


def run(args: argparse.Namespace) -> int:
    """Tunes (or writes the SLURM script)."""
    from imagenet_jax.tune import tuner

    if args.trials < 1:
        raise UsageError("--trials must be >= 1")
    tuning = tuner.Tuning(config=args.config, space=args.space, trials=args.trials, study=args.study,
                          storage=args.storage, workdir=args.workdir or os.path.join("runs", "tune", args.study),
                          sampler=args.sampler, pruner=args.pruner, metric=args.metric, seed=args.seed,
                          overrides=tuple(args.extra))
    if args.emit == "slurm":
        from imagenet_jax.tune.slurm import write_sbatch

        print(f"wrote {write_sbatch(tuning, args.argv)}")
        return 0
    return tuner.tune(tuning)


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """tune report's flags."""
    _study_flags(parser)


def run_report(args: argparse.Namespace) -> int:
    """Writes WORKDIR/report/tune.html (and its files) and prints the best trial."""
    from imagenet_jax.tune.report import write_report

    workdir = args.workdir or os.path.join("runs", "tune", args.study)
    best = write_report(args.study, args.storage, workdir)
    if best:
        print(f"best: trial {best['trial']}, value {best['value']:.4f}\nre-run it: {best['overrides']}")
    print(f"wrote {os.path.join(workdir, 'report', 'tune.html')}")
    return 0


COMMAND = register("tune", Command(
    help="hyperparameter search with Optuna (each trial a run; pruning; resumable; shared studies); report",
    add_flags=add_flags, run=run, description=__doc__, pass_through=True,
    subcommands={"report": Command(help="the study's trials, best override line and Optuna's plots as HTML",
                                   add_flags=add_report_flags, run=run_report, description=__doc__)}))
