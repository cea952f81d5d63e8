"""ONNX via jax2onnx (the `export` extra): input "images" uint8 [batch, S, S, C] -> output "logits" float32.

    session = onnxruntime.InferenceSession(PATH); logits = session.run(None, {"images": images_uint8})[0]

jax2onnx turns `lax.reduce_window_max` over NHWC into a 4-D ONNX MaxPool, which onnxruntime refuses; Flax's
`max_pool`, which it converts properly (NCHW transposes around a 2-D MaxPool), is only recognised when called
with keywords. So the serving function is traced to a jaxpr first and replayed with every unpadded NHWC max
pool routed through `flax.linen.max_pool(x, window_shape=..., strides=...)` (a padded one, as GoogLeNet's and
Inception's "same" and ceil-mode pools, first pads with -inf explicitly); everything else is rebound as is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imagenet_jax.errors import UserFacingError
from imagenet_jax.export.common import FORMATS, METADATA_FILE, ExportSource, write_metadata


@FORMATS.register("onnx")
def export(source: ExportSource, output: str, config) -> list[str]:
    """Writes OUTPUT (the .onnx model, class names in its metadata_props) and OUTPUT.metadata.json."""
    # jax2onnx's dm_pix plugins fail to import on JAX 0.10 (a removed internal); our models never use them.
    logging.getLogger("jax2onnx.plugins.plugin_system").setLevel(logging.ERROR)
    try:
        import onnx
        from jax2onnx import to_onnx
    except ImportError:
        raise UserFacingError("--format=onnx needs the export extra: pip install -e '.[export]'") from None
    import jax
    import jax.numpy as jnp

    spec = jax.ShapeDtypeStruct(source.input_shape(jax.export.symbolic_shape("batch")[0]), jnp.uint8)
    model = to_onnx(replayable(source.function, spec), [spec], model_name="imagenet_jax", input_names=["images"],
                    output_names=["logits"])
    onnx.helper.set_model_props(model, {"class_names": "\n".join(source.class_names),
                                        "checkpoint_step": str(source.metadata["checkpoint_step"])})
    onnx.save(model, output)
    metadata_path = f"{output}.{METADATA_FILE}"
    write_metadata(metadata_path, {**source.metadata, "format": "onnx",
                                   "load": "onnxruntime.InferenceSession(PATH).run(None, {'images': images})[0]"})
    return [output, metadata_path]


def replayable(function: Callable, spec) -> Callable:
    """`function` as its jaxpr, replayed with NHWC max pools as keyword calls of flax.linen.max_pool."""
    import jax

    closed = jax.make_jaxpr(function)(spec)
    return lambda images: _replay(closed.jaxpr, closed.consts, images)[0]


_INLINED = ("jaxpr", "call_jaxpr", "fun_jaxpr")  # params holding the ClosedJaxpr of a call-like primitive


def _replay(jaxpr, consts, *args):
    import flax.linen as nn
    import jax.extend.core as jax_core
    import jax.numpy as jnp

    env = {}

    def read(var):
        return var.val if isinstance(var, jax_core.Literal) else env[var]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        values = [read(var) for var in eqn.invars]
        params = eqn.params
        inner = next((params[key] for key in _INLINED if key in params), None)
        if inner is not None:  # jit, custom_jvp (relu), ...: inlined (no gradients here), pools inside found too
            outputs = _replay(inner.jaxpr, inner.consts, *values)
        elif eqn.primitive.name == "reduce_window_max" and _is_spatial_pool(params):
            window, strides, padding = params["window_dimensions"], params["window_strides"], params["padding"]
            x = values[0]
            if any(low or high for low, high in padding):  # max ignores -inf, as the padded pool does
                x = jnp.pad(x, [tuple(pad) for pad in padding], constant_values=-jnp.inf)
            outputs = [nn.max_pool(x, window_shape=tuple(window[1:-1]), strides=tuple(strides[1:-1]),
                                   padding="VALID")]
        else:
            outputs = eqn.primitive.bind(*values, **params)
            outputs = outputs if eqn.primitive.multiple_results else [outputs]
        env.update(zip(eqn.outvars, outputs))
    return [read(var) for var in jaxpr.outvars]


def _is_spatial_pool(params: dict) -> bool:
    window, strides, padding = params["window_dimensions"], params["window_strides"], params["padding"]
    return (len(window) == 4 and window[0] == window[-1] == 1 and strides[0] == strides[-1] == 1
            and all(low == high == 0 for low, high in (padding[0], padding[-1]))
            and all(d == 1 for d in (*params["base_dilation"], *params["window_dilation"])))
