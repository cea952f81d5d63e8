"""`disagreement`: how an ensemble's members differ on the set, from the same pass as its other metrics.

For a model with `member_logits` (imagenet_jax.ensembles.model.Ensemble): each member's top-1 on the ensemble's
input, the fraction of examples on which each pair of members predicts different classes (mean_disagreement
averages the pairs), and the fraction the members all get wrong (oracle_error: no member is right, a lower
bound on any combination's error). Writes disagreement.json with the full matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask, write_json
from imagenet_jax.evaluators.logits import correct
from imagenet_jax.evaluators.registry import register


@register("disagreement")
class Disagreement(Evaluator):
    """Members' top-1 and pairwise disagreement of an ensemble."""

    OPTIONS = {}

    def __init__(self, *args, **kwargs):
        """Needs an ensemble as the model."""
        super().__init__(*args, **kwargs)
        context = self.context
        if not hasattr(context.model, "member_logits"):
            raise ConfigError(f"{self.where}: the disagreement evaluator needs an ensemble "
                              "(evaluate --ensemble DIR DIR ...).")
        subset = self.eval_set.class_subset

        def step(state, batch):
            logits = context.model.apply({"params": state.params, "batch_stats": state.batch_stats},
                                         batch["image"], method="member_logits")
            if subset is not None:
                logits = jnp.take(logits, jnp.asarray(subset, jnp.int32), axis=-1)
            mask = scored_mask(batch)
            weights = mask.astype(jnp.float32)
            predictions = jnp.argmax(logits, axis=-1)  # [members, N]
            differ = (predictions[:, None, :] != predictions[None, :, :]).astype(jnp.float32)
            right = jnp.stack([correct(member, batch, 1) for member in logits])  # [members, N]
            return {"member_top1": jnp.sum(right * weights, axis=1),
                    "disagree": jnp.sum(differ * weights, axis=2),
                    "all_wrong": jnp.sum(jnp.all(right == 0, axis=0) * weights),
                    **count_sums(batch, mask)}

        self.pass_step = step

    def finish(self, totals: dict, step: int) -> Iterator[tuple[str, float]]:
        """member_<i>_top1, mean_disagreement, oracle_error; writes disagreement.json."""
        count = max(int(totals["num_examples"]), 1)
        member_top1 = np.asarray(totals["member_top1"], np.float64) / count
        matrix = np.asarray(totals["disagree"], np.float64) / count
        members = len(member_top1)
        pairs = [matrix[i, j] for i in range(members) for j in range(i + 1, members)]
        if self.context.process_index == 0 and self.context.workdir:
            write_json(f"{self.output_dir(step)}/disagreement.json",
                       {"member_top1": member_top1.tolist(), "disagreement": matrix.tolist()})
        for index, value in enumerate(member_top1):
            yield f"member_{index}_top1", float(value)
        yield "mean_disagreement", float(np.mean(pairs)) if pairs else 0.0
        yield "oracle_error", float(totals["all_wrong"]) / count
        yield from count_metrics(totals).items()
