"""Parameter and multiply-accumulate counts of registered models, without allocating their weights.

MACs are counted exactly from the traced jaxpr: every convolution and matrix product (`conv_general_dilated`,
`dot_general`), nothing else, which is how torchvision's "GFLOPS" column counts (it reports MACs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.numpy as jnp

from imagenet_jax.models import registry


@dataclass(frozen=True)
class ModelCost:
    """Size and per-image inference cost of one model at its published resolution."""

    name: str
    params: int
    gmacs: float
    image_size: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields: name, params, gmacs, image_size."""
        return asdict(self)


def abstract_variables(model: Any, image_size: int, batch_size: int = 1) -> Any:
    """The variables `model.init` would create for NHWC input of `image_size`, as shapes only."""
    images = jax.ShapeDtypeStruct((batch_size, image_size, image_size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)


def count_params(variables: Any) -> int:
    """Number of trainable parameters (the `params` collection; BatchNorm statistics are not parameters)."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))


def count_macs(function: Callable[..., Any], *args: Any) -> int:
    """Multiply-accumulates of convolutions and matrix products when `function(*args)` runs (args may be abstract)."""
    return _jaxpr_macs(jax.make_jaxpr(function)(*args).jaxpr)


def _jaxpr_macs(jaxpr: Any) -> int:
    total = 0
    for equation in jaxpr.eqns:
        primitive = equation.primitive.name
        if primitive == "conv_general_dilated":
            total += _convolution_macs(equation)
        elif primitive == "dot_general":
            total += _dot_macs(equation)
        repeats = equation.params.get("length", 1) if primitive == "scan" else 1
        branch_costs = [_jaxpr_macs(sub) for sub in _subjaxprs(equation.params)]
        if branch_costs:
            # A `cond` runs one of its branches: count the costliest; other primitives run all sub-jaxprs.
            total += repeats * (max(branch_costs) if primitive == "cond" else sum(branch_costs))
    return total


def _subjaxprs(params: dict[str, Any]) -> Iterator[Any]:
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr


def _convolution_macs(equation: Any) -> int:
    output = equation.outvars[0].aval.shape
    kernel = equation.invars[1].aval.shape
    out_feature_axis = equation.params["dimension_numbers"].rhs_spec[0]
    # Each output element reads one kernel slice: spatial window x input features of its group.
    return math.prod(output) * math.prod(kernel) // kernel[out_feature_axis]


def _dot_macs(equation: Any) -> int:
    (lhs_contracting, _), _ = equation.params["dimension_numbers"]
    lhs = equation.invars[0].aval.shape
    return math.prod(equation.outvars[0].aval.shape) * math.prod(lhs[axis] for axis in lhs_contracting)


def model_cost(name: str, image_size: int | None = None, **options: Any) -> ModelCost:
    """Parameters and GMACs of registered model `name` for one image (default: its published resolution)."""
    image_size = image_size or registry.default_image_size(name)
    model = registry.create(name, **options)
    variables = abstract_variables(model, image_size)
    images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    macs = count_macs(lambda v, x: model.apply(v, x, train=False), variables, images)
    return ModelCost(name=name, params=count_params(variables), gmacs=macs / 1e9, image_size=image_size)


def model_costs(names: Iterable[str] | None = None) -> list[ModelCost]:
    """`model_cost` of each named model (all registered models by default)."""
    return [model_cost(name) for name in (registry.names() if names is None else names)]


def format_table(costs: Iterable[ModelCost]) -> str:
    """A plain-text table of model costs."""
    lines = [f"{'model':<18} {'params':>13} {'GMACs':>8} {'image':>6}"]
    lines += [f"{c.name:<18} {c.params:>13,} {c.gmacs:>8.3f} {c.image_size:>6}" for c in costs]
    return "\n".join(lines)
