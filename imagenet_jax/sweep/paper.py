"""What a paper config declares beside get_config(variant): the paper, the metric its table reports, and its
figure for each variant. The sweep runner runs the variants; the report puts the paper's figures beside ours.

A paper config file (configs/papers/NAME.py) defines:

    PAPER = Paper(title=..., source=..., metric="top1_error", protocol="10-crop, 224 px", dataset="ImageNet",
                  seeds=3, baseline="resnet18")   # seeds and baseline are optional (1; the first variant)
    VARIANTS = {"plain18": 27.94, "resnet18": 27.88, ...}   # the paper's figure, or None where it has none
    def get_config(variant: str = "resnet18") -> ml_collections.ConfigDict: ...

and is run as `python -m imagenet_jax.main --config configs/papers/NAME.py:VARIANT`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping

from imagenet_jax.errors import ConfigError

# metric name -> how to compute it, in percent, from an eval line's fractions
METRICS = {
    "top1_error": lambda line: 100.0 * (1.0 - line["top1"]),
    "top5_error": lambda line: 100.0 * (1.0 - line["top5"]),
    "top1": lambda line: 100.0 * line["top1"],
    "top5": lambda line: 100.0 * line["top5"],
}
LOWER_IS_BETTER = ("top1_error", "top5_error")


@dataclasses.dataclass(frozen=True)
class Paper:
    """A paper whose table a sweep reproduces."""

    title: str
    source: str
    metric: str  # one of METRICS: what the paper's figures are, in percent
    protocol: str  # how the paper measured them (crops, resolution, epochs)
    # The dataset the paper's figures were measured on: it labels their column, and "ours - paper" is shown only
    # when the sweep ran on the same dataset (a CIFAR-10 error minus a Fashion-MNIST error means nothing).
    dataset: str = ""
    seeds: int = 1  # runs per variant (seeds 0..seeds-1); `sweep --seeds N` overrides it
    baseline: str = ""  # the variant every other is compared with in the report; "": the first

    def __post_init__(self):
        """Checks the metric name and the number of seeds."""
        if self.metric not in METRICS:
            raise ConfigError(f"Paper.metric={self.metric!r} is not one of {', '.join(METRICS)}.")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"Paper.seeds={self.seeds!r} must be an integer >= 1.")

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller value of the metric is the better one (errors)."""
        return self.metric in LOWER_IS_BETTER


def same_dataset(paper_dataset: str, ours: str) -> bool:
    """True when a paper's dataset name ("CIFAR-10") and a TFDS name ("cifar10", "imagenet2012") are one dataset."""
    def canonical(name: str) -> str:
        name = "".join(character for character in name.lower() if character.isalnum())
        return {"imagenet2012": "imagenet", "ilsvrc2012": "imagenet", "imagenet1k": "imagenet"}.get(name, name)

    return bool(paper_dataset) and canonical(paper_dataset) == canonical(ours.split("/")[0].split(":")[0])


def select_variant(variants: Mapping[str, float | None], variant: str, default: str) -> str:
    """`variant` (or `default` when empty) if the paper has it, else a ConfigError listing the variants."""
    chosen = variant or default
    if chosen not in variants:
        close = difflib.get_close_matches(chosen, variants, n=2)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown variant {chosen!r}.{hint} Variants: {', '.join(variants)}.")
    return chosen
