"""StableHLO via jax.export: a serialized `jax.export.Exported` (module, calling convention, shapes, platforms).

Load and run it anywhere JAX runs, without this package or the model's code:

    exported = jax.export.deserialize(bytearray(open(PATH, "rb").read()))
    logits = exported.call(images_uint8)        # any batch size
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_jax.export.common import FORMATS, METADATA_FILE, ExportSource, write_metadata

PLATFORMS = ("cpu", "cuda", "tpu")  # lowered for each, so one file serves every backend


def exported_model(source: ExportSource, platforms: tuple[str, ...] = PLATFORMS) -> jax.export.Exported:
    """The serving function exported with a symbolic batch dimension."""
    batch = jax.export.symbolic_shape("batch")[0]
    spec = jax.ShapeDtypeStruct(source.input_shape(batch), jnp.uint8)
    return jax.export.export(jax.jit(source.function), platforms=platforms)(spec)


@FORMATS.register("stablehlo")
def export(source: ExportSource, output: str, config) -> list[str]:
    """Writes OUTPUT (the serialized module) and OUTPUT.metadata.json."""
    exported = exported_model(source)
    with open(output, "wb") as stream:
        stream.write(exported.serialize())
    metadata_path = f"{output}.{METADATA_FILE}"
    write_metadata(metadata_path, {**source.metadata, "format": "stablehlo",
                                   "calling_convention_version": exported.calling_convention_version,
                                   "platforms": list(exported.platforms),
                                   "load": "jax.export.deserialize(bytearray(open(PATH, 'rb').read())).call(images)"})
    return [output, metadata_path]


def load(path: str) -> jax.export.Exported:
    """The Exported stored at `path`."""
    with open(path, "rb") as stream:
        return jax.export.deserialize(bytearray(stream.read()))
