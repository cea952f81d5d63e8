"""`corruptions`: top-1 under ImageNet-C's corruptions at severities 1-5, and corruption errors (CE, mCE).

Corruptions (imagenet_jax/robustness/corruptions/) are applied on device to the uint8-valued eval images before
normalization, with a key per (corruption, severity, batch). Metrics: "<corruption>_<severity>_top1",
"<corruption>_error" (mean error over the severities) and "mean_error". Corruption errors, as Hendrycks &
Dietterich (2019) define them, CE_c = sum_s E_{s,c} / sum_s E^ref_{s,c}, against two references:

- AlexNet ("<c>_ce_alexnet"): ImageNet-C's published AlexNet errors, which are for ImageNet's validation set at
  severities 1-5, so they are reported for the ImageNet-C corruptions that ran at all five severities, by default
  only when the set is imagenet2012's with every class scored (`alexnet_normalized`: "auto", True or False);
- a baseline run ("<c>_ce_baseline"): `baseline_workdir` (the last eval line of this set's name in its
  metrics.jsonl) or `baseline_errors` {corruption: [errors per severity]}.

Their mean is "mce_alexnet" / "mce_baseline" only when all 15 ImageNet-C corruptions ran at all five severities
(the mCE of the paper); over fewer it is "partial_mean_ce_alexnet" / "partial_mean_ce_baseline", with
"partial_mean_ce_<reference>_count", how many it averages, so a partial mean is never read as an mCE. The extra
"gaussian_blur" (ImageNet-C's held-out validation blur) gets a baseline CE but is in no mean.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask
from imagenet_jax.evaluators.logits import correct, eval_logits
from imagenet_jax.evaluators.registry import register
from imagenet_jax.parallel import mesh as mesh_lib
from imagenet_jax.robustness.corruptions import CORRUPTIONS, IMAGENET_C, SEVERITIES, corrupt

# AlexNet's top-1 error on ImageNet-C, averaged over severities 1-5, per corruption: the ImageNet-C authors'
# numbers (github.com/hendrycks/robustness, used as ALEXNET_ERR in google-research/augmix's imagenet.py)
ALEXNET_ERRORS = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592,
    "contrast": 0.853204, "elastic_transform": 0.646056, "pixelate": 0.717840, "jpeg_compression": 0.606500,
}


def baseline_from_workdir(workdir: str, set_name: str, corruptions, severities) -> dict[str, list[float]]:
    """{corruption: errors per severity} from the last `set_name` line of workdir/metrics.jsonl."""
    from imagenet_jax.storage.files import read_json_lines
    from imagenet_jax.storage.layout import RunLayout

    lines = read_json_lines(RunLayout.of(workdir).metrics)
    found = [line for line in lines if line.get("split") == set_name]
    if not found:
        raise ConfigError(f"config.evals.{set_name}.baseline_workdir={workdir!r} has no eval lines of {set_name!r}.")
    last = found[-1]
    try:
        return {name: [1.0 - last[f"{name}_{s}_top1"] for s in severities] for name in corruptions}
    except KeyError as missing:
        raise ConfigError(f"config.evals.{set_name}.baseline_workdir={workdir!r} lacks {missing} in its last "
                          f"{set_name!r} line.") from None


def corruption_errors(errors: dict[str, list[float]], baseline: dict[str, list[float]],
                      set_name: str = "") -> tuple[dict[str, float], float]:
    """({corruption: CE}, mean CE): CE_c = sum_s E_{s,c} / sum_s E^baseline_{s,c}."""
    ces = {}
    for name, values in errors.items():
        if name not in baseline or len(baseline[name]) != len(values):
            raise ConfigError(f"config.evals.{set_name}: the baseline has no {len(values)} errors of {name}.")
        ces[name] = float(np.sum(values) / max(float(np.sum(baseline[name])), 1e-12))
    return ces, float(np.mean(list(ces.values())))


def alexnet_corruption_errors(errors: dict[str, list[float]]) -> dict[str, float]:
    """{corruption: CE against AlexNet} for the ImageNet-C corruptions with errors at all five severities."""
    return {name: float(np.mean(values)) / ALEXNET_ERRORS[name] for name, values in errors.items()
            if name in ALEXNET_ERRORS and len(values) == len(SEVERITIES)}


def mean_corruption_error(ces: dict[str, float], severities, reference: str) -> dict[str, float]:
    """{"mce_<reference>": mean} when `ces` covers ImageNet-C's 15 at severities 1-5, else the partial mean
    ("partial_mean_ce_<reference>") and how many corruptions it averages ("..._count")."""
    covered = [name for name in IMAGENET_C if name in ces]
    if not covered:
        return {}
    mean = float(np.mean([ces[name] for name in covered]))
    if len(covered) == len(IMAGENET_C) and tuple(sorted(severities)) == SEVERITIES:
        return {f"mce_{reference}": mean}
    return {f"partial_mean_ce_{reference}": mean, f"partial_mean_ce_{reference}_count": float(len(covered))}


@register("corruptions")
class Corruptions(Evaluator):
    """Accuracy under each corruption and severity; CE and mCE against AlexNet and against a baseline run."""

    OPTIONS = {"corruptions": tuple(IMAGENET_C), "severities": SEVERITIES, "seed": 0, "baseline_workdir": "",
               "baseline_errors": None, "alexnet_normalized": "auto"}

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """Known corruption names, severities within 1-5."""
        super().validate(name, options, where)
        where = where or f"config.evals.{name}"
        chosen = options.get("corruptions", tuple(IMAGENET_C))
        if isinstance(chosen, str) or not chosen or any(c not in CORRUPTIONS for c in chosen):
            raise ConfigError(f"{where}.corruptions={chosen!r} must be a tuple of: "
                              f"{', '.join(CORRUPTIONS)}.")
        severities = options.get("severities", SEVERITIES)
        if isinstance(severities, (str, int)) or not severities or any(s not in SEVERITIES for s in severities):
            raise ConfigError(f"{where}.severities={severities!r} must be a tuple of integers in 1..5.")
        if not isinstance(options.get("baseline_workdir", ""), str):
            raise ConfigError(f"{where}.baseline_workdir must be a path string.")
        if options.get("alexnet_normalized", "auto") not in ("auto", True, False):
            raise ConfigError(f"{where}.alexnet_normalized must be 'auto', True or False.")

    def __init__(self, *args, **kwargs):
        """Compiles one step per (corruption, severity)."""
        super().__init__(*args, **kwargs)
        self.corruptions, self.severities = tuple(self.options["corruptions"]), tuple(self.options["severities"])
        context = self.context

        def make(name, severity):
            def step(state, batch, key):
                images = corrupt(batch["image"], name, severity, key)
                logits = eval_logits(context.model, state, images, context.mean, context.std,
                                     self.eval_set.class_subset)
                mask = scored_mask(batch)
                return {"top1": jnp.sum(correct(logits, batch, 1) * mask.astype(jnp.float32)),
                        **count_sums(batch, mask)}

            return jax.jit(step, in_shardings=(context.state_sharding, mesh_lib.batch_sharded(context.mesh),
                                               mesh_lib.replicated(context.mesh)),
                           out_shardings=mesh_lib.replicated(context.mesh))

        self.steps = {(name, s): make(name, s) for name in self.corruptions for s in self.severities}

    def baseline(self) -> dict[str, list[float]] | None:
        """The baseline's errors per corruption and severity, if configured."""
        if self.options["baseline_errors"]:
            return {name: list(errors) for name, errors in dict(self.options["baseline_errors"]).items()}
        if self.options["baseline_workdir"]:
            return baseline_from_workdir(self.options["baseline_workdir"], self.name, self.corruptions,
                                         self.severities)
        return None

    def alexnet_normalized(self) -> bool:
        """Whether AlexNet's ImageNet-C errors apply: ImageNet's validation images, every class scored."""
        if self.options["alexnet_normalized"] != "auto":
            return bool(self.options["alexnet_normalized"])
        info = self.eval_set.info
        return getattr(info, "name", "") == "imagenet2012" and self.eval_set.class_subset is None and \
            self.eval_set.split == getattr(info, "eval_split", None)

    def run(self, state, step: int) -> Iterator[tuple[str, float]]:
        """<c>_<s>_top1, <c>_error, mean_error, the CEs and their mean (module docstring), num_examples."""
        base_key = jax.random.key(self.options["seed"])
        errors, totals = {}, None
        for index, (name, severity) in enumerate(self.steps):
            key = jax.random.fold_in(base_key, index)
            batch_index = iter(range(1 << 30))
            step_fn = self.steps[(name, severity)]
            totals = self.accumulate(
                lambda st, batch, fn=step_fn, k=key, i=batch_index: fn(st, batch, jax.random.fold_in(k, next(i))),
                state)
            top1 = float(totals["top1"]) / max(int(totals["num_examples"]), 1)
            errors.setdefault(name, []).append(1.0 - top1)
            yield f"{name}_{severity}_top1", top1
        for name, values in errors.items():
            yield f"{name}_error", float(np.mean(values))
        yield "mean_error", float(np.mean([np.mean(values) for values in errors.values()]))
        if self.alexnet_normalized():
            ces = alexnet_corruption_errors(errors)
            for name, ce in ces.items():
                yield f"{name}_ce_alexnet", ce
            yield from mean_corruption_error(ces, self.severities, "alexnet").items()
        baseline = self.baseline()
        if baseline is not None:
            ces, _ = corruption_errors(errors, baseline, self.name)
            for name, ce in ces.items():
                yield f"{name}_ce_baseline", ce
            yield from mean_corruption_error(ces, self.severities, "baseline").items()
        yield from count_metrics(totals).items()
