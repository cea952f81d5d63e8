"""evaluate: run a run's eval sets (and any given with --eval) on one checkpoint, or on converted weights.

    python -m imagenet_jax evaluate --workdir DIR [--checkpoint best|latest|STEP] [--evals SET,...] [--ema]
        [--eval NAME=TYPE[,key=value...] ...]
    python -m imagenet_jax evaluate --workdir OUT --config configs/x.py --init_from weights.msgpack
    python -m imagenet_jax evaluate --workdir OUT --ensemble DIR[:CHECKPOINT] DIR[:CHECKPOINT] ... [--combine logits]
        [--ensemble_weights W,W,...]
    python -m imagenet_jax evaluate --list

The eval sets are the run's own (config.json: the main split and config.evals) plus any given with --eval (e.g.
--eval test_10crop=multicrop,mode=ten_crop --eval c=corruptions,severities=(1,3)); --evals picks some by name.
Outputs: one line per set appended to DIR/eval/evaluate.jsonl (a metrics.jsonl eval line plus "source": "evaluate"
and "checkpoint"), the evaluators' files under DIR/eval/<set>/<step>/ as during training, and a table on stdout.
The run's metrics.jsonl is left alone, so a run may be evaluated while it trains.
With --ensemble, each member and then the average of their probabilities (or logits) is scored on the first
member's eval sets, written to OUT (imagenet_jax/ensembles/evaluate.py); CHECKPOINT may be lastN (a snapshot
ensemble of a run's newest N checkpoints).
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, UsageError, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """evaluate's flags."""
    parser.add_argument("--list", action="store_true", help="list the evaluator types and their options, then exit")
    shared.WORKDIR.add(parser, help="the run to evaluate (with --init_from: where to write)")
    shared.CHECKPOINT.add(parser)
    parser.add_argument("--evals", default="", metavar="SET,...",
                        help="comma-separated eval set names; '': all of the run's")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=TYPE[,key=value...]",
                        help="an eval set to add (repeatable); types: evaluate --list")
    shared.EMA.add(parser)
    parser.add_argument("--init_from", default="", metavar="WEIGHTS",
                        help="converted weights to evaluate instead of a checkpoint (needs --config)")
    parser.add_argument("--config", default="", metavar="FILE.py[:VARIANT]",
                        help="the config the --init_from weights belong to")
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="DIR[:CHECKPOINT]",
                        help="score these runs' checkpoints and their ensemble (CHECKPOINT: best, latest, STEP or "
                             "lastN); --workdir is where to write")
    parser.add_argument("--combine", default="probabilities", choices=("probabilities", "logits"),
                        help="what the ensemble averages (default probabilities)")
    parser.add_argument("--ensemble_weights", default="", metavar="W,W,...",
                        help="one weight per member (normalized to sum 1); default equal")
    shared.BATCH_SIZE.add(parser)
    shared.DATA_DIR.add(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluates and prints the table (or, with --list, the evaluator types)."""
    from imagenet_jax import evaluate

    if args.list:
        print(evaluate.evaluator_types())
        return 0
    if not args.workdir:
        raise UsageError("--workdir is required (the run to evaluate, or where to write with --init_from)")
    if args.ensemble:
        if args.init_from:
            raise UsageError("--ensemble and --init_from exclude each other (members are runs' checkpoints)")
        from imagenet_jax.ensembles.evaluate import evaluate_ensemble, table

        print(table(evaluate_ensemble(args)))
        return 0
    print(evaluate.table(evaluate.evaluate(args)))
    return 0


COMMAND = register("evaluate", Command(
    help="evaluate a checkpoint (or converted weights) on the run's eval sets, without training",
    add_flags=add_flags, run=run, description=__doc__))
