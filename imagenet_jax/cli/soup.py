"""soup: average the weights of runs fine-tuned from one initialization into a new run (a model soup).

    python -m imagenet_jax soup --workdir OUT --ingredients DIR[:CHECKPOINT] DIR[:CHECKPOINT] ...
        [--method uniform|greedy] [--held_out SET] [--eval NAME=TYPE[,key=value...]] [--bn_batches N]

uniform averages every ingredient; greedy (Wortsman et al. 2022) adds them best first while the held-out top-1
does not drop. OUT is a run directory that evaluate, export, predict and explain accept; soup.json records the
choices (imagenet_jax/ensembles/soup_job.py).
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """soup's flags."""
    shared.WORKDIR.add(parser, required=True, help="where to write the soup (a new run directory)")
    parser.add_argument("--ingredients", nargs="+", required=True, metavar="DIR[:CHECKPOINT]",
                        help="runs of one architecture fine-tuned from one initialization (CHECKPOINT: best, "
                             "latest, STEP or lastN)")
    parser.add_argument("--method", default="greedy", choices=("uniform", "greedy"),
                        help="average all, or add best-first while the held-out top-1 does not drop")
    parser.add_argument("--held_out", default="", metavar="SET",
                        help="the eval set that ranks and admits ingredients (greedy; uniform: reports on it, "
                             "default the main eval split)")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=TYPE[,key=value...]",
                        help="an eval set to add, e.g. minival=classification,holdout=5000")
    parser.add_argument("--bn_batches", type=int, default=0, metavar="N",
                        help="recompute BatchNorm statistics over N training batches (0: average them)")
    shared.BATCH_SIZE.add(parser)
    shared.DATA_DIR.add(parser)


def run(args: argparse.Namespace) -> int:
    """Cooks the soup and prints what it kept."""
    from imagenet_jax.ensembles.soup_job import make_soup

    record = make_soup(args)
    for entry in record["history"]:
        verdict = "kept" if entry["kept"] else "left out"
        print(f"ingredient {entry['ingredient']} ({record['ingredients'][entry['ingredient']]}): alone "
              f"{entry['alone']:.4f}, soup with it {entry['with_it']:.4f}: {verdict}")
    print(f"soup of {len(record['kept'])} of {len(record['ingredients'])} ingredients: {record['held_out']} top-1 "
          f"{record['soup_top1']:.4f}; wrote {args.workdir}")
    return 0


COMMAND = register("soup", Command(
    help="average runs' weights into one model (uniform or greedy soup)",
    add_flags=add_flags, run=run, description=__doc__))
