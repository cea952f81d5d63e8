"""A trained classifier as pure functions of pixel images: the one thing every explanation differentiates.

    network = Network.from_run(load_run("runs/default"), "best")
    logits = network.logits(images)                                   # float pixels [N,H,W,C] in 0..255
    logits, activation = network.logits_and_activation(images, "stage3_block1")
    grads = jax.grad(lambda d: network.logits_with_delta(images, layer, d)[:, k].sum())(zeros_like(activation))

Layers are named by their '/'-joined module path in the params tree ("stage3_block1", "inception5b",
"stage4_block2/Conv_1"). A layer's output is read, and perturbed by an additive `delta` (whose gradient is the
gradient with respect to that output, Grad-CAM's ingredient), through Flax's method interception: no model
changes, no mutable collections, so the functions stay pure and jit-compile like evaluation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.errors import ConfigError
from imagenet_jax.models.outputs import split_outputs


def _path(module: nn.Module) -> str:
    return "/".join(str(part) for part in module.path)


@dataclasses.dataclass(frozen=True)
class Network:
    """A model, its variables ({"params", "batch_stats"}) and the input normalization (per-channel pixel mean/std)."""

    model: nn.Module
    variables: Any
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_run(cls, run, checkpoint: str | int = "best", use_ema: bool = False) -> Network:
        """The network of a run's checkpoint (imagenet_jax.runs.Run)."""
        return cls(run.model, run.variables(checkpoint, use_ema), tuple(run.config.normalize_mean),
                   tuple(run.config.normalize_std))

    def with_variables(self, variables: Any) -> Network:
        """The same network with other weights (the randomization check's re-initialized copies)."""
        return dataclasses.replace(self, variables=variables)

    def normalize(self, images: jax.Array) -> jax.Array:
        """Pixel images -> the model's input (the eval normalization)."""
        mean = jnp.asarray(self.mean, jnp.float32)
        std = jnp.asarray(self.std, jnp.float32)
        return (images.astype(jnp.float32) - mean) / std

    def logits(self, images: jax.Array) -> jax.Array:
        """float32 logits of float pixel images [N, H, W, C] (0..255), eval mode."""
        logits, _ = split_outputs(self.model.apply(self.variables, self.normalize(images), train=False))
        return logits.astype(jnp.float32)

    def logits_with_delta(self, images: jax.Array, layer: str, delta: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        """(logits, the output of `layer`) with `delta` added to that output (None: nothing added)."""
        self.check_layer(layer)
        seen: list[jax.Array] = []

        def interceptor(next_fun, args, kwargs, context):
            output = next_fun(*args, **kwargs)
            if context.method_name != "__call__" or _path(context.module) != layer:
                return output
            if not isinstance(output, jax.Array):
                raise ConfigError(f"layer {layer!r} returns {type(output).__name__}, not one array; name one of its "
                                  "submodules instead.")
            if seen:
                raise ConfigError(f"layer {layer!r} is called more than once per forward pass; name another.")
            output = output + delta.astype(output.dtype) if delta is not None else output
            seen.append(output)
            return output

        with nn.intercept_methods(interceptor):
            logits, _ = split_outputs(self.model.apply(self.variables, self.normalize(images), train=False))
        return logits.astype(jnp.float32), seen[0].astype(jnp.float32)

    def logits_and_activation(self, images: jax.Array, layer: str) -> tuple[jax.Array, jax.Array]:
        """(logits, the float32 output of `layer`)."""
        return self.logits_with_delta(images, layer, None)

    def layer_names(self) -> list[str]:
        """Every module path in the params tree, parents before children."""
        names: list[str] = []

        def walk(tree: Any, prefix: str) -> None:
            for key, value in tree.items():
                if isinstance(value, dict) or hasattr(value, "items"):
                    name = f"{prefix}/{key}" if prefix else str(key)
                    names.append(name)
                    walk(value, name)

        walk(self.variables["params"], "")
        return names

    def check_layer(self, layer: str) -> None:
        """ConfigError listing the top-level layers unless `layer` names a module with parameters."""
        names = self.layer_names()
        if layer not in names:
            top = [name for name in names if "/" not in name]
            raise ConfigError(f"layer={layer!r} is not a layer of {type(self.model).__name__}; its layers are "
                              f"{', '.join(top)} (and their submodules, e.g. {top[0]}/...).")

    def spatial_layers(self, images: jax.Array) -> list[str]:
        """Top-level layers whose output is a feature map [N, h, w, C] with h, w > 1, in the order they run."""
        order: list[str] = []

        def interceptor(next_fun, args, kwargs, context):
            output = next_fun(*args, **kwargs)
            name = _path(context.module)
            if (context.method_name == "__call__" and "/" not in name and name
                    and isinstance(output, jax.Array | jax.ShapeDtypeStruct) and output.ndim == 4
                    and output.shape[1] > 1 and output.shape[2] > 1 and name not in order):
                order.append(name)
            return output

        def forward(variables, pixels):
            with nn.intercept_methods(interceptor):
                return self.model.apply(variables, self.normalize(pixels), train=False)

        # Variables as an argument: shapes are all it needs, so abstract variables (jax.eval_shape of init) do too.
        jax.eval_shape(forward, self.variables, jax.ShapeDtypeStruct(images.shape, jnp.float32))
        return order

    def default_layer(self, images: jax.Array) -> str:
        """Grad-CAM's default: the last top-level layer with a spatial output (the last convolutional stage)."""
        layers = self.spatial_layers(images)
        if not layers:
            raise ConfigError(f"{type(self.model).__name__} has no layer with a spatial output; name one with layer=.")
        return layers[-1]
