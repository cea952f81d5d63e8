"""Optimizers by name: ours registered here, any other name resolved against optax (as big_vision does).

Every factory is `factory(learning_rate, weight_decay, *, kwargs...)`: `learning_rate` is the schedule and
`weight_decay` maps the parameter tree to each leaf's decay (config.weight_decay x its
config.weight_decay_multipliers value). How decay enters is the optimizer's own definition:
- sgd, rmsprop: L2, added to the gradient before momentum (PyTorch's SGD(weight_decay), TF's L2 loss term);
- adamw, lamb: decoupled, added to the preconditioned update and scaled by the learning rate;
- lars: added to the gradient and counted in the trust ratio's denominator (MLPerf ResNet);
- optax names: the function's own `weight_decay` argument if it has one (multipliers then must be 0 or 1, as
  a mask), else L2 on the gradient.
"""

from __future__ import annotations

import inspect
import re

import jax
import optax

from imagenet_jax.errors import ConfigError
from imagenet_jax.training.optim import param_rules, transforms
from imagenet_jax.training.optim.registry import Registry

# Bias and BatchNorm scale/offset leaves: kept out of LARS/LAMB's layer-wise adaptation (MLPerf, timm).
NORM_AND_BIAS = r".*/(bias|scale)"


# optax optimizers whose update needs more than (grads, state, params), which our train step does not pass.
_NEEDS_LOSS_VALUE = ("lbfgs", "polyak_sgd")


def _optax_optimizer(name: str):
    # An optax alias (optax/_src/alias.py) whose first argument is the learning rate: adam, lion, adafactor, ...
    function = getattr(optax, name, None) if not name.startswith("_") and name not in _NEEDS_LOSS_VALUE else None
    if not inspect.isfunction(function) or not function.__module__.endswith("alias"):
        return None
    parameters = list(inspect.signature(function).parameters)
    return function if parameters and parameters[0] == "learning_rate" else None


def optax_names() -> list[str]:
    """Names of optax optimizers config.optimizer.name may use besides ours."""
    return sorted(name for name in dir(optax) if _optax_optimizer(name) is not None)


OPTIMIZERS = Registry("optimizer", reserved=("learning_rate", "weight_decay", "mask"), fallback=_optax_optimizer,
                      fallback_names=optax_names, also=" or an optax optimizer")


def _check_ranges(kwargs: dict, **context) -> None:
    # Decay rates are fractions in [0, 1); eps and the trust coefficient are non-negative; regexes compile.
    for key in ("momentum", "b1", "b2", "decay"):
        if key in kwargs and not 0 <= kwargs[key] < 1:
            raise ConfigError(f"config.optimizer.kwargs.{key}={kwargs[key]} must be in [0, 1).")
    for key in ("eps", "trust_coefficient", "initial_scale"):
        if key in kwargs and kwargs[key] < 0:
            raise ConfigError(f"config.optimizer.kwargs.{key}={kwargs[key]} must be >= 0.")
    if "exclude_from_adaptation" in kwargs:
        try:
            re.compile(kwargs["exclude_from_adaptation"])
        except re.error as error:
            raise ConfigError(f"config.optimizer.kwargs.exclude_from_adaptation="
                              f"{kwargs['exclude_from_adaptation']!r} is not a regular expression ({error}).") from None


@OPTIMIZERS.register("sgd", check=_check_ranges)
def sgd(learning_rate, weight_decay, *, momentum: float = 0.9, nesterov: bool = False):
    """SGD with (Nesterov) momentum: v = mu v + g + wd w; w -= lr (g + wd w + mu v if nesterov else v)."""
    return optax.chain(transforms.add_decayed_weights(weight_decay),
                       optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov))


@OPTIMIZERS.register("adamw", check=_check_ranges)
def adamw(learning_rate, weight_decay, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam with decoupled weight decay (Loshchilov & Hutter): w -= lr (m_hat / (sqrt(v_hat) + eps) + wd w)."""
    return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), transforms.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


@OPTIMIZERS.register("rmsprop", check=_check_ranges)
def rmsprop(learning_rate, weight_decay, *, decay: float = 0.9, eps: float = 1.0, momentum: float = 0.9,
            initial_scale: float = 1.0, eps_in_sqrt: bool = True):
    """TF1's RMSProp as Inception-v3 trained with it: ms = d ms + (1-d) g^2; v = mu v + lr g / sqrt(ms + eps).

    TF1 puts eps inside the square root and starts ms at 1; PyTorch and Keras put it outside
    (eps_in_sqrt=False) and start at 0 (initial_scale=0). With eps = 1.0 the two differ a lot.
    """
    return optax.chain(
        transforms.add_decayed_weights(weight_decay),
        optax.rmsprop(learning_rate, decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
                      momentum=momentum or None))


@OPTIMIZERS.register("lars", check=_check_ranges)
def lars(learning_rate, weight_decay, *, momentum: float = 0.9, nesterov: bool = False,
         trust_coefficient: float = 0.001, eps: float = 0.0, exclude_from_adaptation: str = NORM_AND_BIAS):
    """LARS as in MLPerf ResNet: v = mu v + lr ratio (g + wd w), ratio = eta ||w|| / (||g|| + wd ||w|| + eps).

    Leaves whose path matches `exclude_from_adaptation` (BN and biases) take plain momentum SGD steps;
    keep them out of weight decay with config.weight_decay_multipliers (the default does).
    """
    return optax.chain(
        transforms.scale_by_lars(weight_decay, _adapted(exclude_from_adaptation), trust_coefficient, eps),
        optax.scale_by_learning_rate(learning_rate),
        optax.trace(decay=momentum, nesterov=nesterov))


@OPTIMIZERS.register("lamb", check=_check_ranges)
def lamb(learning_rate, weight_decay, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         exclude_from_adaptation: str = NORM_AND_BIAS):
    """LAMB (You et al. 2020): u = m_hat / (sqrt(v_hat) + eps) + wd w; w -= lr (||w|| / ||u||) u.

    Leaves matching `exclude_from_adaptation` skip the trust ratio, as timm's Lamb does for its no-decay
    group (the ResNet-strikes-back recipe); "" adapts every leaf as the paper and optax do.
    """
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        transforms.add_decayed_weights(weight_decay),
        optax.masked(optax.scale_by_trust_ratio(), _adapted(exclude_from_adaptation)),
        optax.scale_by_learning_rate(learning_rate))


def _adapted(exclude: str):
    excluded = param_rules.matches(exclude)

    def adapted(tree):
        return jax.tree.map(lambda skip: not skip, excluded(tree))

    return adapted


def decays_decoupled_by_optax(name: str) -> bool:
    """True for an optax optimizer (not ours) that takes its own `weight_decay` argument."""
    if OPTIMIZERS.is_registered(name):
        return False
    return "weight_decay" in inspect.signature(OPTIMIZERS.get(name)).parameters


def check_weight_decay(name: str, weight_decay: float, multipliers: param_rules.Rules) -> None:
    """ConfigError if an optax optimizer's own decay (a 0/1 mask) is given multipliers other than 0 and 1."""
    if weight_decay and decays_decoupled_by_optax(name):
        odd = [rule for rule in multipliers if rule[1] not in (0, 1)]
        if odd:
            raise ConfigError(f"config.weight_decay_multipliers: {odd[0]!r}: optax's {name!r} decays with a mask, "
                              "so multipliers must be 0 or 1 (our registered optimizers take any value).")


def create(name: str, kwargs: dict, learning_rate: optax.Schedule, weight_decay: float,
           weight_decay_multipliers: param_rules.Rules) -> optax.GradientTransformation:
    """The optimizer `name` with `kwargs`, the schedule and per-leaf weight decay from the multiplier rules."""
    rates = param_rules.per_leaf(weight_decay_multipliers, scale=weight_decay)
    factory = OPTIMIZERS.get(name)
    if OPTIMIZERS.is_registered(name):
        return factory(learning_rate, rates, **kwargs)
    if decays_decoupled_by_optax(name):
        options = {"weight_decay": weight_decay}
        if "mask" in inspect.signature(factory).parameters:
            decayed = param_rules.per_leaf(weight_decay_multipliers)
            options["mask"] = lambda tree: jax.tree.map(lambda value: value != 0, decayed(tree))
        return factory(learning_rate, **options, **kwargs)
    return optax.chain(transforms.add_decayed_weights(rates), factory(learning_rate, **kwargs))

