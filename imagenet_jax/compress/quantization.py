"""int8 quantization of our linen models through qwix (github.com/google/qwix), without rewriting a module.

qwix intercepts `jax.lax.conv_general_dilated` and `jax.lax.dot_general` inside the model's __call__ (every nn.Conv
and nn.Dense) and quantizes the kernel per output channel and the activations per tensor, symmetric absmax:
- QAT (config.quantization.mode="qat"): `for_training` wraps the model with qwix's QtProvider (fake quantization with
  straight-through gradients) when the loop creates it, so training and its evaluations see int8 rounding. The
  activation scales are dynamic (per batch): static ones would need a "quant_stats" collection the train step does
  not carry. The parameter tree is the float model's, so checkpoints, EMA and export are unchanged.
- PTQ (`python -m imagenet_jax.compress quantize`): `calibrate` runs the float (or QAT-trained) model over training
  batches, collecting qwix "quant_stats" for static activation scales (mean over batches of each example's absmax,
  qwix's own statistic and names); `quantize` converts the params with `qwix.quantize_params` into int8 weights
  + scales, evaluated by qwix's PtqProvider model: convolutions and matmuls run int8 x int8 into int32.
BatchNorm, biases and the pooling stay float (not folded). Convolutions go through XLA's convolution
(cpu_conv_lowering="xla"): the patches + matmul lowering reshapes the kernel, which qwix's PTQ cannot follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.registry import Registry

ModelWrapper = Callable[[ml_collections.ConfigDict, nn.Module], nn.Module]  # (config, model) -> the trained model
# config.quantization.mode ("" is off): what each mode does to the model the train loop trains.
QUANTIZATION_MODES: Registry[ModelWrapper] = Registry("quantization mode", config_key="quantization.mode",
                                                      also=' or "" (off)')
DTYPES = ("int8", "int4")
FIELDS = ("mode", "weight_dtype", "act_dtype", "calibration_steps")
QUANTIZED_OPS = ("conv_general_dilated", "dot_general")  # nn.Conv and nn.Dense; einsum-based pooling stays float


def _qwix():
    try:
        import qwix
    except ImportError:
        raise ConfigError("quantization needs qwix: pip install -e '.[compress]'") from None
    return qwix


def rules(weight_dtype: str = "int8", act_dtype: str = "int8", *, static_activations: bool,
          module_path: str = ".*") -> list:
    """qwix rules quantizing every conv and dense layer under `module_path` (regex over module paths)."""
    qwix = _qwix()
    act = jnp.dtype(act_dtype) if act_dtype else None
    return [qwix.QtRule(module_path=module_path, op_names=QUANTIZED_OPS, weight_qtype=jnp.dtype(weight_dtype),
                        act_qtype=act, act_static_scale=static_activations if act is not None else None)]


def qat_model(model: nn.Module, weight_dtype: str = "int8", act_dtype: str = "int8") -> nn.Module:
    """`model` with qwix fake quantization (dynamic activation scales): same params, quantized forward pass."""
    qwix = _qwix()
    _use_xla_convolutions()
    return qwix.quantize_model(model, qwix.QtProvider(rules(weight_dtype, act_dtype, static_activations=False)))


@QUANTIZATION_MODES.register("qat")
def _qat(config: ml_collections.ConfigDict, model: nn.Module) -> nn.Module:
    """Quantization-aware training: the model trains fake-quantized."""
    return qat_model(model, config.quantization.weight_dtype, config.quantization.act_dtype)


def _check_ptq(options: dict) -> None:
    if options["act_dtype"] != options["weight_dtype"]:
        raise ConfigError(f"config.quantization.act_dtype={options['act_dtype']!r} must equal weight_dtype="
                          f"{options['weight_dtype']!r} for ptq (qwix's quantized convolution needs both).")


@QUANTIZATION_MODES.register("ptq", check=_check_ptq)
def _ptq(config: ml_collections.ConfigDict, model: nn.Module) -> nn.Module:
    """Post-training quantization: the float model trains; `python -m imagenet_jax.compress quantize` converts it."""
    return model


def for_training(config: ml_collections.ConfigDict, model: nn.Module) -> nn.Module:
    """The model the train loop uses: `qat_model(model)` when config.quantization.mode is "qat", else `model`."""
    mode = config.quantization.mode
    return QUANTIZATION_MODES.get(mode)(config, model) if mode else model


def calibrate(model: nn.Module, variables: dict, batches: Iterable[jax.Array], weight_dtype: str = "int8",
              act_dtype: str = "int8") -> dict:
    """qwix quant_stats (running absmax of each conv/dense input) over normalized NHWC float batches."""
    qwix = _qwix()
    _use_xla_convolutions()
    observer = qwix.quantize_model(model, _observer_provider(rules(weight_dtype, act_dtype, static_activations=True)))

    @jax.jit
    def step(quant_stats, images):
        _, updated = observer.apply({**variables, "quant_stats": quant_stats}, images, train=False,
                                    mutable=["quant_stats"])
        return updated["quant_stats"]

    quant_stats, count = {}, 0
    for images in batches:
        quant_stats = step(quant_stats, images)  # the first call creates the stats (one more trace)
        count += 1
    if not count:
        raise ValueError("calibrate() got no batches")
    return jax.device_get(quant_stats)


def _observer_provider(quantization_rules: list):
    """A qwix QtProvider that only records quant_stats (computing in float), under the names PTQ reads them.

    qwix 0.1.8's own QtProvider updates a convolution's static-scale statistics inside its custom_vjp, which leaks a
    tracer under linen (UnexpectedTracerError); its dot_general path records them outside. This records both outside.
    """
    qwix = _qwix()
    from qwix._src.core import conv_general as quantized_conv
    from qwix._src.core import dot_general as quantized_dot
    from qwix._src.core import qarray
    from qwix._src.utils import flax_util

    class Observer(qwix.QtProvider):
        def conv_general_dilated(self, lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                                 dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                                 preferred_element_type=None, out_sharding=None):
            rule, op_id = self._get_current_rule_and_op_id("conv_general_dilated")
            if rule is not None and rule.weight_qtype is not None and rule.act_qtype is not None:
                numbers = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
                how = quantized_conv.get_how_to_quantize(dimension_numbers=numbers, for_lhs=True, qtype=rule.act_qtype,
                                                         calibration_method=rule.act_calibration_method)
                self._update_and_get_quant_stat(f"{op_id}_lhs", rule.act_batch_axes, qarray.calibrate(lhs, how))
            return jax.lax.conv_general_dilated(
                lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
                batch_group_count=batch_group_count, precision=precision,
                preferred_element_type=preferred_element_type, out_sharding=out_sharding)

        def dot_general(self, lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, *,
                        out_sharding=None):
            rule, op_id = self._get_current_rule_and_op_id("dot_general")
            if rule is not None and rule.weight_qtype is not None and rule.act_qtype is not None:
                operands = [("lhs", lhs, True)]
                if flax_util.find_param(rhs) is None:  # an activation on both sides (PTQ quantizes both)
                    operands.append(("rhs", rhs, False))
                for side, operand, for_lhs in operands:
                    how = quantized_dot.get_how_to_quantize(
                        dimension_numbers=dimension_numbers, ndims=(lhs.ndim, rhs.ndim), for_lhs=for_lhs,
                        qtype=rule.act_qtype, tile_size=rule.tile_size, calibration_method=rule.act_calibration_method)
                    self._update_and_get_quant_stat(f"{op_id}_{side}", rule.act_batch_axes,
                                                    qarray.calibrate(operand, how))
            return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                                       preferred_element_type=preferred_element_type, out_sharding=out_sharding)

    return Observer(quantization_rules)


def quantize(model: nn.Module, variables: dict, quant_stats: dict, input_shape: tuple[int, ...],
             weight_dtype: str = "int8", act_dtype: str = "int8") -> tuple[nn.Module, dict]:
    """(qwix PTQ model, its variables): int8 kernels with per-channel scales, static activation scales."""
    qwix = _qwix()
    _use_xla_convolutions()
    ptq_model = qwix.quantize_model(model, qwix.PtqProvider(rules(weight_dtype, act_dtype, static_activations=True)))
    abstract = jax.eval_shape(lambda: ptq_model.init(jax.random.key(0), jnp.zeros((1, *input_shape), jnp.float32),
                                                     train=False))
    params = qwix.quantize_params(jax.tree.map(jnp.asarray, variables["params"]), abstract["params"], quant_stats)
    return ptq_model, {**variables, "params": params}


def model_bytes(tree: Any) -> int:
    """Bytes of every array in `tree` at its storage width (int4 counts half a byte)."""
    total = 0.0
    for leaf in jax.tree.leaves(tree):
        dtype = jnp.dtype(leaf.dtype)
        bits = jnp.iinfo(dtype).bits if jnp.issubdtype(dtype, jnp.integer) else dtype.itemsize * 8
        total += int(np.prod(leaf.shape)) * bits / 8
    return int(total)


def latency_seconds(fn: Callable[[jax.Array], Any], images: jax.Array, repeats: int = 10) -> float:
    """Median wall time of the compiled `fn(images)` (after a warm-up call)."""
    jax.block_until_ready(fn(images))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(images))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _use_xla_convolutions() -> None:
    from imagenet_jax import models

    models.set_cpu_conv_lowering("xla")  # qwix must see the HWIO kernel itself, not the patches reshape


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the config.quantization key that is unknown or out of range."""
    quantization = config.quantization
    if not isinstance(quantization, ml_collections.ConfigDict) or set(quantization.keys()) != set(FIELDS):
        found = sorted(quantization.keys()) if isinstance(quantization, ml_collections.ConfigDict) else quantization
        raise ConfigError(f"config.quantization must have exactly the fields {', '.join(FIELDS)} (found {found}); "
                          "see imagenet_jax/config/base.py.")
    if quantization.mode:
        QUANTIZATION_MODES.get(quantization.mode)  # not a registered quantization mode: one line, close names
    if quantization.weight_dtype not in DTYPES:
        raise ConfigError(f"config.quantization.weight_dtype={quantization.weight_dtype!r} is not one of: "
                          f"{', '.join(DTYPES)}.")
    if quantization.act_dtype not in ("", *DTYPES):
        raise ConfigError(f"config.quantization.act_dtype={quantization.act_dtype!r} is not one of: \"\" (float "
                          f"activations), {', '.join(DTYPES)}.")
    if quantization.mode:
        QUANTIZATION_MODES.check(quantization.mode, quantization.to_dict())  # the mode's own constraints
    steps = quantization.calibration_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"config.quantization.calibration_steps={steps!r} must be an integer >= 1.")
    if quantization.mode:
        _qwix()
