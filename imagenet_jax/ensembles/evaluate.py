"""evaluate --ensemble: each member, then the ensemble, on the same eval sets with the same evaluators.

    python -m imagenet_jax evaluate --workdir OUT --ensemble DIR[:CHECKPOINT] DIR[:CHECKPOINT] ...
        [--combine probabilities|logits] [--ensemble_weights W,W,...] [--evals SET,...] [--eval NAME=TYPE,...]

The eval sets are the first member's (its main split and config.evals) plus --eval. Each member is scored with
its own config (preprocessing, normalization, image size); its evaluators' files go under OUT/members/<i>/. The
ensemble reads the first member's eval preprocessing at the largest member's image size (each member resizes it
on device to its own: imagenet_jax/ensembles/model.py) and is scored by every evaluator of the sets, plus a
`disagreement` set on the main split (members' top-1, pairwise disagreement, oracle error). Lines go to
OUT/eval/evaluate.jsonl ("member": index or "ensemble"), OUT/ensemble.json records the members.
"""

from __future__ import annotations

import argparse
import json

import jax
import ml_collections

from imagenet_jax.ensembles import members as members_lib
from imagenet_jax.ensembles.model import Ensemble, check_options, stack_variables

DISAGREEMENT_SET = "members"  # the disagreement evaluator's set name on the main split


def evaluate_ensemble(args: argparse.Namespace) -> dict[str, dict]:
    """{"<set>@<member i>" and "<set>": metrics}; writes OUT/eval/evaluate.jsonl and OUT/ensemble.json."""
    from imagenet_jax import evaluate
    from imagenet_jax.storage import run_path, write_text_atomically

    members = members_lib.load_members(list(args.ensemble), use_ema=args.ema)
    weights = [float(w) for w in args.ensemble_weights.split(",")] if args.ensemble_weights else [1.0] * len(members)
    check_options(args.combine, weights, len(members))
    base = evaluate.eval_config(members[0].config, args)
    results: dict[str, dict] = {}
    for index, member in enumerate(members):
        config = member_config(member.config, base, args)
        scored = evaluate.score(config, None, member.variables, f"{args.workdir.rstrip('/')}/members/{index}",
                                member.step, batch_size=args.batch_size, only=args.evals)
        evaluate.append_lines(args.workdir, member.step, scored, checkpoint=member.name, member=index)
        results.update({f"{name}@{index}": metrics for name, metrics in scored.items()})
    config, model = ensemble_config(base, members, weights, args.combine)
    only = ",".join([*args.evals.split(","), DISAGREEMENT_SET]) if args.evals else ""
    scored = evaluate.score(config, model, stack_variables([m.variables for m in members]), args.workdir, 0,
                            batch_size=args.batch_size, only=only)
    evaluate.append_lines(args.workdir, 0, scored, checkpoint="ensemble", member="ensemble")
    results.update(scored)
    if jax.process_index() == 0:
        record = {"combine": args.combine, "weights": weights, "use_ema": bool(args.ema),
                  "members": [{"workdir": m.workdir, "step": m.step, "model": m.config.model,
                               "image_size": _size(m.config)} for m in members]}
        target = run_path(args.workdir) / "ensemble.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(target, json.dumps(record, indent=1))
    return results


def member_config(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict,
                  args: argparse.Namespace) -> ml_collections.ConfigDict:
    """The member's own config with the ensemble's eval sets (so every member is scored on the same sets)."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.evals = base.evals
    config.main_eval = base.main_eval
    config.eval_split = base.eval_split
    if args.data_dir:
        config.data_dir = args.data_dir
    return config


def ensemble_config(base: ml_collections.ConfigDict, members: list, weights: list[float],
                    combine: str) -> tuple[ml_collections.ConfigDict, Ensemble]:
    """The first member's eval config at the largest member size, identity normalization; and the Ensemble."""
    from imagenet_jax.models import model_from_config

    config = ml_collections.ConfigDict(base.to_dict())
    sizes = [_size(m.config) for m in members]
    config.eval_image_size = max(sizes)
    channels = len(tuple(base.normalize_mean))
    config.normalize_mean, config.normalize_std = (0.0,) * channels, (1.0,) * channels  # members normalize
    config.evals[DISAGREEMENT_SET] = {"type": "disagreement", "split": base.eval_split}
    model = Ensemble(members=tuple(model_from_config(m.config, m.num_classes) for m in members), sizes=tuple(sizes),
                     means=tuple(tuple(m.config.normalize_mean) for m in members),
                     stds=tuple(tuple(m.config.normalize_std) for m in members), weights=tuple(weights),
                     combine=combine)
    return config, model


def _size(config: ml_collections.ConfigDict) -> int:
    from imagenet_jax.data.inputs import eval_image_size

    return eval_image_size(config)


def table(results: dict[str, dict]) -> str:
    """Rows (set, metric), one column per member and one for the ensemble."""
    from imagenet_jax.evaluate import cell, text_table

    sets = [name for name in results if "@" not in name]
    members = sorted({int(name.rpartition("@")[2]) for name in results if "@" in name})
    header = ("set", "metric", *[f"member {index}" for index in members], "ensemble")
    rows = [(name, metric, *[cell(results.get(f"{name}@{index}", {}).get(metric)) for index in members], cell(value))
            for name in sets for metric, value in results[name].items()]
    return text_table([header, *rows])
