"""What every export format shares: the run's serving function, its input contract, the metadata file and the
registry of formats, which each writer module of this package fills itself (`@FORMATS.register("onnx")`): this
module imports none of them (the registry finds them on its first lookup)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import jax
import numpy as np

from imagenet_jax.registry import Registry

Writer = Callable[..., list[str]]  # export(source, output, config) -> the paths written
FORMATS: Registry[Writer] = Registry("export format", discover="imagenet_jax.export")
METADATA_FILE = "metadata.json"


@dataclasses.dataclass(frozen=True)
class ExportSource:
    """A run's checkpoint made self-contained: fn(uint8 images) -> float32 logits, plus what a user must know."""

    function: Callable[[jax.Array], jax.Array]  # weights closed over (become constants or variables)
    variables: dict
    apply: Callable[[dict, jax.Array], jax.Array]  # fn(variables, images): the same, weights as an argument
    image_size: int
    channels: int
    class_names: tuple[str, ...]
    metadata: dict

    def input_shape(self, batch: int | str | None) -> tuple:
        """(batch, image_size, image_size, channels)."""
        return (batch, self.image_size, self.image_size, self.channels)


def export_source(run, checkpoint: str | int = "best", use_ema: bool = False) -> ExportSource:
    """The serving function of `run` at `checkpoint`, with its metadata."""
    restored = run.restore(checkpoint)
    variables = jax.tree.map(np.asarray, restored.variables(use_ema))
    apply = run.inference_function()
    config = run.config
    metadata = {
        "workdir": run.workdir, "checkpoint_step": restored.step, "model": config.model,
        "dataset": config.dataset, "input": {
            "dtype": "uint8", "layout": "NHWC", "shape": ["batch", run.image_size, run.image_size, run.channels],
            "preprocessing": "the run's eval preprocessing: config.eval_preprocess="
                             f"{config.eval_preprocess!r} at image_size {run.image_size}, crop_pct {config.crop_pct}",
            "normalization_inside": {"mean": list(config.normalize_mean), "std": list(config.normalize_std)},
        },
        "output": {"logits": ["batch", run.num_classes], "dtype": "float32"},
        "class_names": list(run.class_names),
    }
    return ExportSource(function=lambda images: apply(variables, images), variables=variables, apply=apply,
                        image_size=run.image_size, channels=run.channels, class_names=tuple(run.class_names),
                        metadata=metadata)


def write_metadata(path: str, metadata: dict) -> None:
    """Writes `metadata` as indented JSON at `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as stream:
        json.dump(metadata, stream, indent=1)


def writer(fmt: str, flag: str = "--format") -> Writer:
    """The registered writer of export format `fmt`; a UserFacingError naming `flag` and the formats otherwise."""
    if fmt not in FORMATS:
        raise FORMATS.unknown(fmt, subject=f"{flag}={fmt!r}")
    return FORMATS.get(fmt)


def export_run(run, fmt: str, output: str, checkpoint: str | int = "best", use_ema: bool = False) -> list[str]:
    """Exports `run` at `checkpoint` in format `fmt` to `output`; returns the paths written."""
    export = writer(fmt)
    source = export_source(run, checkpoint, use_ema)
    from imagenet_jax.models.conv_lowering import conv_lowering_mode

    with conv_lowering_mode("xla"):  # a portable artifact: XLA's own convolution, whatever runtime runs it
        return export(source, output, run.config)
