"""Runs, ensembles and soups compared on the same test images: top-1, NLL, ECE, and paired 95% intervals.

RESULTS.md's "Ensembles and soups" tables: each model's metrics on its run's whole main eval split, and for each
model the difference to a baseline (or to the mean of several) with a paired bootstrap interval over the test
images (the same resampled images for both sides, so the interval measures the models' difference, not the
test set's difficulty).

    python experiments/paired_comparison.py --model seed0=runs/seed0 --model seed1=runs/seed1 \
        --model ensemble=ensemble:runs/seed0,runs/seed1 --baseline seed0,seed1

A model is DIR[:CHECKPOINT] (best by default), or ensemble:DIR[:CKPT],DIR[:CKPT],... (the mean of the members'
softmax, as `evaluate --ensemble` computes it). All must share their main eval split and its preprocessing.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

ECE_BINS = 15  # the calibration evaluator's default


def probabilities(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(softmax [N, C] on the main eval split, labels [N]) of a model spec."""
    import imagenet_jax
    from imagenet_jax.ensembles.members import split_spec

    specs = spec[len("ensemble:"):].split(",") if spec.startswith("ensemble:") else [spec]
    members, labels = [], None
    for member in specs:
        workdir, checkpoint = split_spec(member)
        run = imagenet_jax.load_run(workdir)
        variables = run.variables(checkpoint)
        batches = list(run.eval_batches(None, 500))
        keep = np.concatenate([batch["mask"] for batch in batches])
        logits = np.concatenate([run.logits(batch["image"], variables=variables) for batch in batches])[keep]
        member_labels = np.concatenate([batch["label"] for batch in batches])[keep]
        if labels is not None and not np.array_equal(labels, member_labels):
            raise SystemExit(f"{member}: a different eval split from the other members")
        labels = member_labels
        shifted = np.exp(logits.astype(np.float64) - logits.max(1, keepdims=True))
        members.append(shifted / shifted.sum(1, keepdims=True))
    return np.mean(members, axis=0), labels


def metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top1, nll and the ECE of the calibration evaluator (its binning and formula, 15 bins)."""
    from imagenet_jax.evaluators.calibration import bin_sums, reliability

    hits = (probs.argmax(1) == labels).astype(np.float64)
    sums = bin_sums(probs, hits, np.ones(len(labels)), ECE_BINS)
    ece = reliability(*(np.asarray(sums[key]) for key in ("bin_count", "bin_hits", "bin_confidence")))["ece"]
    return {"top1": float(hits.mean()), "nll": float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12))),
            "ece": float(ece)}


def paired_interval(correct: np.ndarray, baseline: np.ndarray, resamples: int = 2000, seed: int = 0
                    ) -> tuple[float, float, float]:
    """(difference of means, 2.5th and 97.5th percentiles) of correct - baseline over bootstrap resamples."""
    rng = np.random.default_rng(seed)
    difference = correct.astype(np.float64) - baseline.astype(np.float64)
    draws = [difference[rng.integers(0, len(difference), len(difference))].mean() for _ in range(resamples)]
    return float(difference.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def main(argv: list[str] | None = None) -> int:
    """Prints a markdown table and writes --json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=SPEC")
    parser.add_argument("--baseline", required=True, metavar="NAME[,NAME...]",
                        help="the model compared against (several: the mean of their correctness per image)")
    parser.add_argument("--json", default="", metavar="FILE")
    args = parser.parse_args(argv)
    models = dict(item.split("=", 1) for item in args.model)
    computed = {name: probabilities(spec) for name, spec in models.items()}
    labels = next(iter(computed.values()))[1]
    correct = {name: (probs.argmax(1) == labels).astype(np.float64) for name, (probs, _) in computed.items()}
    baseline_names = args.baseline.split(",")
    baseline = np.mean([correct[name] for name in baseline_names], axis=0)
    rows = {}
    print(f"| model | top-1 | NLL | ECE | Δ top-1 vs {' + '.join(baseline_names)} (95% paired bootstrap) |")
    print("|---|---:|---:|---:|---|")
    for name, (probs, _) in computed.items():
        values = metrics(probs, labels)
        delta, low, high = paired_interval(correct[name], baseline)
        rows[name] = {**values, "delta_top1": delta, "interval": [low, high], "spec": models[name]}
        print(f"| {name} | {values['top1']:.2%} | {values['nll']:.4f} | {values['ece']:.4f} | "
              f"{delta * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}] |")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"baseline": baseline_names, "examples": int(len(labels)), "models": rows}, stream, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
