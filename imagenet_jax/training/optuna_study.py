"""Optuna's pieces by name, shared by the tuner (imagenet_jax/tune/) and the runs it starts (trial_pruning.py).

Samplers: tpe, random, grid (every combination of each parameter's `grid` values), cmaes. Pruners: median
(Optuna's MedianPruner with its defaults: stop a trial whose value at a step is worse than the median of earlier
trials' at that step, once 5 trials have completed), successive_halving, hyperband (min_resource 1 evaluation
step, max_resource "auto": the steps of a full trial), none. Storage: any Optuna URL; SQLite is opened with a 60 s
lock timeout, since several tuners and their trials write to one file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from imagenet_jax.registry import Registry

PRUNERS: Registry[Callable[[], Any]] = Registry("pruner", config_key="tune.pruner")
SAMPLERS: Registry[Callable[..., Any]] = Registry("sampler")
SQLITE_TIMEOUT_SECONDS = 60


@PRUNERS.register("median")
def _median():
    import optuna

    # Optuna's defaults. With 2 startup trials, a search of the default job (RESULTS.md) pruned 8 of its next 8
    # trials at their first evaluation (a quarter epoch in), where warmup and learning rate rank trials differently
    # from their end.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


@PRUNERS.register("successive_halving")
def _successive_halving():
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner()


@PRUNERS.register("hyperband")
def _hyperband():
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")


@PRUNERS.register("none")
def _none():
    import optuna

    return optuna.pruners.NopPruner()


def make_pruner(name: str):
    """The Optuna pruner registered as `name` (ConfigError naming config.tune.pruner otherwise)."""
    return PRUNERS.get(name)()


@SAMPLERS.register("tpe")
def _tpe(seed: int, grid: Mapping[str, list]):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


@SAMPLERS.register("random")
def _random(seed: int, grid: Mapping[str, list]):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("grid")
def _grid(seed: int, grid: Mapping[str, list]):
    import optuna

    return optuna.samplers.GridSampler(dict(grid), seed=seed)


@SAMPLERS.register("cmaes")
def _cmaes(seed: int, grid: Mapping[str, list]):
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_sampler(name: str, seed: int, grid: Mapping[str, list]):
    """The Optuna sampler registered as `name`; `grid` is {parameter: values} (the grid sampler's search space)."""
    if name not in SAMPLERS:
        raise SAMPLERS.unknown(name, subject=f"--sampler={name!r}")
    return SAMPLERS.get(name)(seed, grid)


def storage_of(url: str):
    """Optuna's storage for `url`; SQLite with a long lock timeout (many writers share the file)."""
    import optuna

    if url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}})
    return optuna.storages.get_storage(url)
