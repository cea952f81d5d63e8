"""The soup command: average runs' weights (uniform or greedy), optionally recompute BN, write a new run directory.

    python -m imagenet_jax soup --workdir OUT --ingredients DIR[:CHECKPOINT] DIR[:CHECKPOINT] ...
        [--method uniform|greedy] [--held_out SET] [--eval NAME=TYPE,...] [--bn_batches N]

OUT becomes a run that `evaluate`, `export`, `predict`, `explain` and `init_from` accept: config.json (the first
ingredient's config) and checkpoints/<step>/ holding the soup's params and batch_stats (step: the newest
ingredient's), plus soup.json: the ingredients, each one's held-out score, the greedy history and the soup's
score. The held-out set is an eval set of the first ingredient's config or one added with --eval (e.g.
--eval minival=classification,holdout=5000 for training examples held out from runs trained with that holdout);
its top-1 ranks and admits ingredients. Selecting by the test set would overfit it: the soup then says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging

import jax
import ml_collections

from imagenet_jax.ensembles import members as members_lib
from imagenet_jax.ensembles import soup
from imagenet_jax.errors import ConfigError


def make_soup(args: argparse.Namespace) -> dict:
    """Cooks the soup into args.workdir; returns the soup.json record."""
    from imagenet_jax import evaluate
    from imagenet_jax.data import inputs
    from imagenet_jax.evaluators import runner
    from imagenet_jax.storage import run_path, write_text_atomically
    from imagenet_jax.storage.layout import RunLayout

    if args.method not in soup.METHODS:
        raise ConfigError(f"--method={args.method!r} is not one of: {', '.join(soup.METHODS)}.")
    if args.bn_batches < 0:
        raise ConfigError(f"--bn_batches={args.bn_batches} must be >= 0 (0: average the ingredients' statistics).")
    layout = RunLayout.of(args.workdir)
    if layout.checkpoints.exists() and any(layout.checkpoints.iterdir()):
        raise ConfigError(f"{layout.checkpoints} already holds checkpoints; write the soup to a new --workdir.")
    ingredients = members_lib.load_members(list(args.ingredients), what="--ingredients")
    if len({member.config.model for member in ingredients}) > 1:
        raise ConfigError("--ingredients: a soup needs one architecture; these are "
                          f"{', '.join(sorted({m.config.model for m in ingredients}))}.")
    config = evaluate.eval_config(ingredients[0].config, args)
    main_set = inputs.load_dataset(config).eval_split
    names = [main_set, *runner.entries(config)]
    held_out = args.held_out or (main_set if args.method == "uniform" else "")
    if held_out not in names:
        raise ConfigError(f"--held_out={held_out!r}: {'the greedy soup needs an eval set: ' if not held_out else ''}"
                          f"the first ingredient's sets are {', '.join(names)}; add one with --eval "
                          "(e.g. --eval minival=classification,holdout=5000).")
    if held_out == main_set and args.method == "greedy":
        logging.warning("the greedy soup selects ingredients by %s, the run's test split: its score there is "
                        "optimistic (hold out training examples: --eval minival=classification,holdout=N)", held_out)
    scorer = evaluate.Scorer(config, None, "", batch_size=args.batch_size, only=held_out)
    model = scorer.model

    def held_out_top1(variables: dict) -> float:
        return float(scorer(_with_batch_stats(variables), 0)[held_out]["top1"])

    def _with_batch_stats(variables: dict) -> dict:
        if not args.bn_batches:
            return variables
        return soup.recompute_batch_stats(model, variables, _train_images(config, scorer, args.batch_size),
                                          args.bn_batches, tuple(config.normalize_mean), tuple(config.normalize_std))

    weights = [member.variables for member in ingredients]
    if args.method == "greedy":
        kept, history = soup.greedy(weights, held_out_top1)
    else:
        kept, history = list(range(len(ingredients))), []
    variables = _with_batch_stats(soup.average([weights[index] for index in kept]))
    score = float(scorer(variables, 0)[held_out]["top1"])
    step = max(member.step for member in ingredients)
    record = {"method": args.method, "held_out": held_out, "bn_batches": args.bn_batches, "step": step,
              "ingredients": [member.name for member in ingredients], "kept": kept,
              "history": [dataclasses.asdict(entry) for entry in history], "soup_top1": score}
    if jax.process_index() == 0:
        run_path(args.workdir).mkdir(parents=True, exist_ok=True)
        write_text_atomically(layout.config, json.dumps(ingredients[0].config.to_dict(), indent=2, sort_keys=True))
        _save_checkpoint(layout.checkpoints, step, variables, ingredients[0].config, record)
        write_text_atomically(run_path(args.workdir) / "soup.json", json.dumps(record, indent=1))
    return record


def _train_images(config: ml_collections.ConfigDict, scorer, batch_size: int):
    """Full batches of the training split at the eval preprocessing (no augmentation), uint8 on the device."""
    from imagenet_jax.data import inputs
    from imagenet_jax.parallel import mesh as mesh_lib

    info = scorer.info
    stream = inputs.eval_stream(config, inputs.EvalSet(name="train", info=info, split=info.train_split),
                                local_batch_size=(batch_size or config.batch_size) // jax.process_count(),
                                process_index=jax.process_index(), process_count=jax.process_count())
    mesh = mesh_lib.make_data_mesh()
    for batch in stream():
        if not batch["mask"].all():
            return  # a padded last batch would bias the statistics
        yield mesh_lib.global_batch({"image": batch["image"]}, mesh)["image"]


def _save_checkpoint(directory, step: int, variables: dict, config: ml_collections.ConfigDict, record: dict) -> None:
    from imagenet_jax.training.checkpointing import Checkpointer

    checkpointer = Checkpointer(directory, keep=1)
    state = {"params": variables["params"], "batch_stats": variables.get("batch_stats") or {}}
    meta = {"best_top1": None, "best_step": step, "elapsed_seconds": 0.0, "step": step, "config": config.to_dict(),
            "soup": record}
    checkpointer.save(step, state, meta, metrics={"top1": record["soup_top1"]})
    checkpointer.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m imagenet_jax.ensembles.soup_job`: the soup command (imagenet_jax/cli/soup.py); the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("soup", argv, prog="python -m imagenet_jax.ensembles.soup_job")


if __name__ == "__main__":
    import sys

    sys.exit(main())
