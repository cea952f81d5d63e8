"""`adversarial`: top-1 under FGSM or PGD (robustness/attacks.py) with the model in eval mode.

eps and step_size are in pixel units of the 0-255 image (eps=4 is "4/255"); the attack perturbs the
uint8-valued image before normalization, with gradients through the compiled eval-mode model. Metrics:
clean_top1, top1 (attacked), num_examples.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp

from imagenet_jax.core import losses
from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask
from imagenet_jax.evaluators.logits import correct, eval_logits
from imagenet_jax.evaluators.registry import register
from imagenet_jax.parallel import mesh as mesh_lib
from imagenet_jax.robustness.attacks import fgsm, pgd

ATTACKS = ("pgd", "fgsm")


@register("adversarial")
class Adversarial(Evaluator):
    """Clean and attacked top-1."""

    OPTIONS = {"attack": "pgd", "eps": 4.0, "step_size": 1.0, "steps": 10, "random_start": True, "seed": 0}

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """attack in ATTACKS, eps/step_size >= 0, steps >= 1."""
        super().validate(name, options, where)
        where = where or f"config.evals.{name}"
        merged = {**cls.OPTIONS, **options}
        if merged["attack"] not in ATTACKS:
            raise ConfigError(f"{where}.attack={merged['attack']!r} is not one of: {', '.join(ATTACKS)}.")
        for key in ("eps", "step_size"):
            value = merged[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{where}.{key}={value!r} must be a number >= 0 (0-255 pixel units).")
        if not isinstance(merged["steps"], int) or merged["steps"] < 1:
            raise ConfigError(f"{where}.steps={merged['steps']!r} must be an integer >= 1.")

    def __init__(self, *args, **kwargs):
        """Compiles the attack-and-score step."""
        super().__init__(*args, **kwargs)
        context, options, subset = self.context, self.options, self.eval_set.class_subset
        classes = context.num_classes if subset is None else len(subset)
        per_example_loss = losses.create("softmax_xent")

        def step(state, batch, key):
            mask = scored_mask(batch)
            weights = mask.astype(jnp.float32)

            def logits_of(images):
                return eval_logits(context.model, state, images, context.mean, context.std, subset)

            def loss_fn(images, labels):  # summed: each example's gradient is its own loss's
                return jnp.sum(per_example_loss(logits_of(images), losses.soft_targets(labels, classes)) * weights)

            images = batch["image"].astype(jnp.float32)
            if options["attack"] == "fgsm":
                attacked = fgsm(loss_fn, images, batch["label"], eps=float(options["eps"]))
            else:
                attacked = pgd(loss_fn, images, batch["label"], eps=float(options["eps"]),
                               step_size=float(options["step_size"]), steps=int(options["steps"]),
                               random_start=bool(options["random_start"]), key=key)
            return {"clean_top1": jnp.sum(correct(logits_of(images), batch, 1) * weights),
                    "top1": jnp.sum(correct(logits_of(attacked), batch, 1) * weights), **count_sums(batch, mask)}

        self.step_fn = jax.jit(step, in_shardings=(context.state_sharding, mesh_lib.batch_sharded(context.mesh),
                                                   mesh_lib.replicated(context.mesh)),
                               out_shardings=mesh_lib.replicated(context.mesh))

    def run(self, state, step: int) -> Iterator[tuple[str, float]]:
        """clean_top1, top1 under attack, num_examples."""
        key = jax.random.key(self.options["seed"])
        batch_index = iter(range(1 << 30))
        totals = self.accumulate(lambda st, batch: self.step_fn(st, batch, jax.random.fold_in(key, next(batch_index))),
                                 state)
        count = max(int(totals["num_examples"]), 1)
        yield "clean_top1", float(totals["clean_top1"]) / count
        yield "top1", float(totals["top1"]) / count
        yield from count_metrics(totals).items()
