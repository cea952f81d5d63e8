"""What compression did to a run: sparsity per layer and parameter counts (`report`), and int8 PTQ accuracy, size
and CPU latency against the float model (`quantize`). Both read the workdir only; neither writes to it."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from imagenet_jax.core.metrics import topk_correct
from imagenet_jax.errors import UserFacingError
from imagenet_jax.parallel.mesh import leaf_path
from imagenet_jax.runs import Run, load_run


def report(workdir: str, checkpoint: str | int = "latest", evaluate: bool = False) -> dict:
    """Per-layer sparsity, parameter counts (total, nonzero), dense and sparse size, and the checkpoint's accuracy."""
    from imagenet_jax.compress.pruning import prunable_paths

    run = load_run(workdir)
    restored = run.restore(checkpoint)
    params = restored.state["params"]
    pruning = run.config.get("pruning") or ml_collections.ConfigDict({"include": (), "exclude": ()})
    prunable = prunable_paths(params, tuple(pruning.include), tuple(pruning.exclude))
    layers = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        leaf = np.asarray(leaf)
        nonzero = int(np.count_nonzero(leaf))
        layers.append({"path": leaf_path(path), "shape": list(leaf.shape), "params": int(leaf.size),
                       "nonzero": nonzero, "sparsity": 1.0 - nonzero / max(leaf.size, 1),
                       "prunable": bool(prunable[leaf_path(path)]), "bytes": int(leaf.nbytes)})
    total = sum(layer["params"] for layer in layers)
    nonzero = sum(layer["nonzero"] for layer in layers)
    in_scope = [layer for layer in layers if layer["prunable"]]
    scope_total = sum(layer["params"] for layer in in_scope)
    itemsize = max((np.asarray(leaf).dtype.itemsize for leaf in jax.tree.leaves(params)), default=4)
    return {
        "workdir": workdir, "step": restored.step, "model": run.config.model,
        "pruning": {key: value for key, value in (pruning.to_dict() if pruning else {}).items()},
        "layers": layers, "total_params": total, "nonzero_params": nonzero,
        "sparsity": 1.0 - nonzero / max(total, 1),
        "prunable_params": scope_total,
        "prunable_sparsity": 1.0 - sum(layer["nonzero"] for layer in in_scope) / max(scope_total, 1),
        "dense_bytes": sum(layer["bytes"] for layer in layers),
        # Nonzero values plus a one-bit-per-weight presence bitmap: what a simple sparse format stores.
        "sparse_bytes": nonzero * itemsize + math.ceil(total / 8),
        "accuracy": _accuracy_of_checkpoint(run, restored.step, evaluate),
    }


def _accuracy_of_checkpoint(run: Run, step: int, evaluate: bool) -> dict:
    if not evaluate:
        for row in run.metrics():  # the main eval set's line carries best_top1
            if row.get("step") == step and row.get("split") != "train" and "best_top1" in row:
                return {"split": row["split"], "top1": row.get("top1"), "top5": row.get("top5"),
                        "source": "metrics.jsonl"}
    evaluated = run.evaluate(step)
    return {"split": "eval", "top1": evaluated["top1"], "top5": evaluated["top5"], "source": "evaluated"}


def format_report(result: dict) -> str:
    """The report as a fixed-width table and a summary."""
    lines = [f"{result['workdir']} step {result['step']} ({result['model']})",
             f"{'parameter':<44} {'shape':<18} {'params':>9} {'nonzero':>9} {'sparsity':>8}  pruned"]
    for layer in result["layers"]:
        lines.append(f"{layer['path']:<44} {'x'.join(map(str, layer['shape'])):<18} {layer['params']:>9} "
                     f"{layer['nonzero']:>9} {layer['sparsity']:>8.2%}  {'yes' if layer['prunable'] else ''}")
    accuracy = result["accuracy"]
    lines += [f"total params {result['total_params']}, nonzero {result['nonzero_params']} "
              f"(sparsity {result['sparsity']:.2%}; prunable kernels {result['prunable_sparsity']:.2%} of "
              f"{result['prunable_params']})",
              f"size: dense {result['dense_bytes'] / 1e6:.3f} MB, sparse (values + bitmap) "
              f"{result['sparse_bytes'] / 1e6:.3f} MB",
              f"accuracy ({accuracy['split']}, {accuracy['source']}): top-1 {accuracy['top1']:.4f}"]
    return "\n".join(lines)


def quantize(workdir: str, checkpoint: str | int = "latest", calibration_steps: int | None = None,
             batch_size: int = 256, eval_batches: int | None = None, latency_repeats: int = 10,
             export_format: str = "", export_output: str = "") -> dict:
    """int8 PTQ of a run's checkpoint via qwix: float vs quantized top-1, size and CPU latency per batch; with
    export_format, the quantized model is also exported (imagenet_jax.export's formats) to export_output."""
    from imagenet_jax import models
    from imagenet_jax.compress import quantization
    from imagenet_jax.models.outputs import split_outputs

    run = load_run(workdir)
    config = run.config
    settings = config.get("quantization") or ml_collections.ConfigDict(
        {"weight_dtype": "int8", "act_dtype": "int8", "calibration_steps": 10})
    weight_dtype, act_dtype = settings.weight_dtype, settings.act_dtype or settings.weight_dtype
    calibration_steps = calibration_steps or settings.calibration_steps
    restored = run.restore(checkpoint)
    variables = jax.tree.map(jnp.asarray, restored.variables())
    mean = jnp.asarray(tuple(config.normalize_mean), jnp.float32)
    std = jnp.asarray(tuple(config.normalize_std), jnp.float32)
    model = run.model

    def normalize(images):
        return (jnp.asarray(images).astype(jnp.float32) - mean) / std

    def logits_fn(module, module_variables):
        # The variables are an argument, not a closure: XLA must not fold the weights into the program.
        apply = jax.jit(lambda variables_, images: split_outputs(module.apply(variables_, normalize(images),
                                                                              train=False))[0].astype(jnp.float32))
        return lambda images: apply(module_variables, images)

    eval_images = [batch for batch in run.eval_batches(eval_batches, batch_size)]
    probe = jnp.asarray(eval_images[0]["image"])
    models.set_cpu_conv_lowering(config.get("cpu_conv_lowering", "auto"))  # the float model as the run evaluates it
    float_fn = logits_fn(model, variables)
    float_top1 = _top1(float_fn, eval_images)
    float_latency = quantization.latency_seconds(float_fn, probe, latency_repeats)

    calibration = [normalize(batch["image"]) for batch in _training_batches(run, batch_size, calibration_steps)]
    quant_stats = quantization.calibrate(model, variables, calibration, weight_dtype, act_dtype)
    float_xla_fn = logits_fn(model, variables)  # now traced with XLA convolutions, as the quantized model is
    float_xla_latency = quantization.latency_seconds(float_xla_fn, probe, latency_repeats)
    input_shape = tuple(probe.shape[1:])
    ptq_model, ptq_variables = quantization.quantize(model, variables, quant_stats, input_shape, weight_dtype,
                                                     act_dtype)
    ptq_fn = logits_fn(ptq_model, ptq_variables)
    ptq_top1 = _top1(ptq_fn, eval_images)
    ptq_latency = quantization.latency_seconds(ptq_fn, probe, latency_repeats)
    count = sum(int(np.sum(batch["mask"] & (batch["label"] >= 0))) for batch in eval_images)
    exported = []
    if export_format:
        exported = _export_quantized(run, restored.step, ptq_model, ptq_variables, normalize, export_format,
                                     export_output, {"weight_dtype": weight_dtype, "act_dtype": act_dtype,
                                                     "calibration_batches": len(calibration), "library": "qwix"})
    return {
        "workdir": workdir, "step": restored.step, "model": config.model, "trained_with": config.get(
            "quantization", {}).get("mode", "") or "float",
        "weight_dtype": weight_dtype, "act_dtype": act_dtype, "calibration_batches": len(calibration),
        "batch_size": batch_size, "eval_examples": count,
        "float_top1": float_top1, "quantized_top1": ptq_top1, "top1_delta": ptq_top1 - float_top1,
        "float_bytes": quantization.model_bytes(variables), "quantized_bytes": quantization.model_bytes(ptq_variables),
        "float_latency_ms": 1e3 * float_latency, "float_xla_conv_latency_ms": 1e3 * float_xla_latency,
        "quantized_latency_ms": 1e3 * ptq_latency, "latency_batch": int(probe.shape[0]),
        "backend": jax.default_backend(), "exported": exported,
    }


def _export_quantized(run: Run, step: int, ptq_model, ptq_variables: dict, normalize, fmt: str, output: str,
                      quantization_info: dict) -> list[str]:
    """Writes the quantized model in export format `fmt` (uint8 images in, float32 logits out)."""
    import dataclasses

    from imagenet_jax.export.common import export_source, writer
    from imagenet_jax.models.outputs import split_outputs

    export = writer(fmt, "--export")
    if not output:
        raise UserFacingError("--export needs --output PATH (where the exported model is written)")

    def apply(variables: dict, images: jax.Array) -> jax.Array:
        return split_outputs(ptq_model.apply(variables, normalize(images), train=False))[0].astype(jnp.float32)

    float_source = export_source(run, step)  # metadata, image size, class names of the same checkpoint
    source = dataclasses.replace(float_source, function=lambda images: apply(ptq_variables, images),
                                 variables=ptq_variables, apply=apply,
                                 metadata={**float_source.metadata, "quantization": quantization_info})
    return export(source, output, run.config)


def format_quantize(result: dict) -> str:
    """The PTQ comparison as a small table."""
    return "\n".join([
        f"{result['workdir']} step {result['step']} ({result['model']}, trained {result['trained_with']}); "
        f"{result['weight_dtype']} weights, {result['act_dtype']} activations, calibrated on "
        f"{result['calibration_batches']} training batches of {result['batch_size']}",
        f"{'model':<10} {'top-1':>8} {'size MB':>9} {'CPU ms/batch':>13}",
        f"{'float':<10} {result['float_top1']:>8.4f} {result['float_bytes'] / 1e6:>9.3f} "
        f"{result['float_latency_ms']:>13.1f}  (XLA convolutions: {result['float_xla_conv_latency_ms']:.1f})",
        f"{'quantized':<10} {result['quantized_top1']:>8.4f} {result['quantized_bytes'] / 1e6:>9.3f} "
        f"{result['quantized_latency_ms']:>13.1f}",
        f"top-1 delta {100 * result['top1_delta']:+.2f} points on {result['eval_examples']} examples; "
        f"latency per batch of {result['latency_batch']} on {result['backend']}",
    ])


def _top1(logits_of, batches: list[dict]) -> float:
    correct = count = 0
    for batch in batches:
        logits = logits_of(jnp.asarray(batch["image"]))
        keep = batch["mask"] & (batch["label"] >= 0)
        correct += int(np.sum(np.asarray(topk_correct(logits, batch["label"], 1)) * keep))
        count += int(np.sum(keep))
    return correct / max(count, 1)


def _training_batches(run: Run, batch_size: int, count: int) -> list[dict[str, Any]]:
    """`count` training batches with the eval preprocessing (the statistics the deployed model will see)."""
    import itertools

    from imagenet_jax.data import inputs, pipeline, preprocessing

    config = run.config
    info = run.dataset()
    preprocess = preprocessing.build(config.eval_preprocess,
                                     inputs.context(config, inputs.eval_image_size(config), info.channels),
                                     "eval_preprocess")
    stream = pipeline.train_batches(info, global_batch_size=batch_size, seed=config.seed, start_step=0,
                                    preprocess=preprocess, cache=False)
    return list(itertools.islice(stream, count))
