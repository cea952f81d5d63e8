"""Evaluate a run's checkpoint (or converted weights) with its evaluators, without training.

    python -m imagenet_jax evaluate --workdir DIR [--checkpoint best|latest|STEP] [--evals SET,...] [--ema]
        [--eval NAME=TYPE[,key=value...] ...]
    python -m imagenet_jax evaluate --workdir OUT --config configs/x.py --init_from weights.msgpack

(`python -m imagenet_jax.evaluate ...` is the same command; its flags, the fields of the `args` below, are declared
in imagenet_jax/cli/evaluate.py.)

The eval sets are the run's own (config.json: the main split and config.evals) plus any given with --eval (e.g.
--eval test_10crop=multicrop,mode=ten_crop --eval c=corruptions,severities=(1,3)); --evals picks some by name;
--list shows the types and their options. Outputs: one line per set appended to DIR/eval/evaluate.jsonl (the
fields of a metrics.jsonl eval line plus "source": "evaluate" and "checkpoint"), the evaluators' files under
DIR/eval/<set>/<step>/ as during training, and a table on stdout. The run's metrics.jsonl is left alone, so a
training run may be evaluated while it trains.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import flax
import jax
import jax.numpy as jnp
import ml_collections

from imagenet_jax import evaluators
from imagenet_jax.errors import ConfigError


@flax.struct.dataclass
class EvalState:
    """The part of a TrainState evaluators read."""

    params: dict
    batch_stats: dict


def load_weights(args: argparse.Namespace) -> tuple[ml_collections.ConfigDict, dict, int]:
    """(config, {"params", "batch_stats"} on the host, step) of the checkpoint or the converted weights."""
    if args.init_from:
        from imagenet_jax.config.files import load_config_file
        from imagenet_jax.training.init_from import load_pretrained

        if not args.config:
            raise ConfigError("--init_from needs --config (the model and data the weights belong to).")
        return load_config_file(args.config), load_pretrained(args.init_from), 0
    from imagenet_jax.runs import load_run

    run = load_run(args.workdir)
    restored = run.restore(args.checkpoint)
    return run.config, restored.variables(args.ema), restored.step


def evaluate(args: argparse.Namespace) -> dict[str, dict]:
    """Runs the chosen evaluators; writes evaluate.jsonl and the evaluators' files; returns {set: metrics}."""
    config, variables, step = load_weights(args)
    config = eval_config(config, args)
    results = score(config, None, variables, args.workdir, step, batch_size=args.batch_size, only=args.evals,
                    merge_converted=bool(args.init_from))
    suffix = "_ema" if args.ema else ""
    results = {name + suffix: metrics for name, metrics in results.items()}
    append_lines(args.workdir, step, results, checkpoint=args.init_from or str(args.checkpoint))
    return results


def eval_config(config: ml_collections.ConfigDict, args: argparse.Namespace) -> ml_collections.ConfigDict:
    """A copy of the run's config with --data_dir and the --eval sets applied, validated."""
    config = ml_collections.ConfigDict(config.to_dict())
    if args.data_dir:
        config.data_dir = args.data_dir
    config = evaluators.with_eval_flags(config, args.eval)
    evaluators.validate(config)
    return config


def score(config: ml_collections.ConfigDict, model, variables: dict, workdir: str, step: int, *, batch_size: int = 0,
          only: str = "", merge_converted: bool = False) -> dict[str, dict]:
    """{set: metrics} of `variables` on the config's eval sets (the evaluators' files under workdir/eval/).

    `model` None is the config's model; `merge_converted` fills converted weights into a fresh init (a new head).
    """
    scorer = Scorer(config, model, workdir, batch_size=batch_size, only=only)
    if merge_converted:
        from imagenet_jax.training.init_from import merge_pretrained

        shape = (1, config.image_size, config.image_size, scorer.info.channels)
        initial = jax.device_get(scorer.model.init(jax.random.key(0), jnp.zeros(shape), train=False))
        variables = merge_pretrained({"params": initial["params"], "batch_stats": initial.get("batch_stats", {})},
                                     variables, scorer.num_classes)
    return scorer(variables, step)


class Scorer:
    """The eval sets of a config, compiled once: `scorer(variables, step)` -> {set: metrics}."""

    def __init__(self, config: ml_collections.ConfigDict, model=None, workdir: str = "", *, batch_size: int = 0,
                 only: str = ""):
        """Loads the data and builds the evaluators (`only`: comma-separated set names; model None: the config's)."""
        from imagenet_jax import models
        from imagenet_jax.data import inputs
        from imagenet_jax.parallel import mesh as mesh_lib

        self.info = inputs.load_dataset(config)
        self.num_classes = config.num_classes or self.info.num_classes
        self.model = model if model is not None else models.model_from_config(config, self.num_classes)
        mesh = mesh_lib.make_data_mesh()
        self.replicated = mesh_lib.replicated(mesh)
        batch_size = batch_size or config.eval_batch_size or config.batch_size
        context = evaluators.EvalContext(config, self.model, self.num_classes, mesh, self.replicated,
                                         batch_size // jax.process_count(), workdir, jax.process_index(),
                                         jax.process_count())
        self.runner = evaluators.EvalRunner(config, self.info, context,
                                            only=[name for name in only.split(",") if name] or None)

    def __call__(self, variables: dict, step: int) -> dict[str, dict]:
        """{set: metrics} of the variables ({"params", "batch_stats"}), every example of every set once."""
        state = jax.device_put(EvalState(params=variables["params"], batch_stats=variables.get("batch_stats") or {}),
                               self.replicated)
        return self.runner.evaluate(state, step)


def append_lines(workdir: str, step: int, results: dict[str, dict], **fields) -> None:
    """Appends one evaluate.jsonl line per set (process 0 only): the metrics, "source": "evaluate", `fields`."""
    from imagenet_jax.storage.layout import RunLayout

    if jax.process_index() != 0:
        return
    path = RunLayout.of(workdir).evaluate_log
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": step, "split": name, **metrics, "source": "evaluate", **fields, "time": time.time()})
             for name, metrics in results.items()]
    previous = path.read_text() if path.exists() else ""
    path.write_text(previous + "".join(line + "\n" for line in lines))


def table(results: dict[str, dict]) -> str:
    """The results as a plain text table: set, metric, value."""
    return text_table([("set", "metric", "value"), *[(name, key, cell(value)) for name, metrics in results.items()
                                                      for key, value in metrics.items()]])


def text_table(rows: list[tuple[str, ...]]) -> str:
    """Rows of text cells (the header first) as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)) for row in rows)


def cell(value) -> str:
    """A metric as a table cell: floats to 4 decimals, "-" where there is none."""
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def evaluator_types() -> str:
    """One line per registered evaluator: its type name and options with their defaults."""
    return "\n".join(f"{name}: " + (", ".join(f"{key}={value!r}" for key, value in evaluators.get(name).OPTIONS.items())
                                    or "(no options)") for name in evaluators.names())


def main(argv: list[str] | None = None) -> int:
    """`python -m imagenet_jax.evaluate`: the evaluate command (imagenet_jax/cli/evaluate.py); returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("evaluate", argv, prog="python -m imagenet_jax.evaluate")


if __name__ == "__main__":
    sys.exit(main())
