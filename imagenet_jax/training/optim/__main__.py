"""Lists the optimizers and schedules config.optimizer.name / config.schedule.name accept, with their kwargs."""

from imagenet_jax.training.optim import OPTIMIZERS, SCHEDULES
from imagenet_jax.training.optim.optimizers import optax_names


def _describe(registry, name: str) -> str:
    arguments = ", ".join(f"{key}={parameter.default!r}" for key, parameter in registry.accepted(name).items())
    summary = (registry.get(name).__doc__ or "").strip().splitlines()[0]
    return f"  {name}({arguments})\n      {summary}"


if __name__ == "__main__":
    print("config.optimizer.name (with config.optimizer.kwargs):")
    print("\n".join(_describe(OPTIMIZERS, name) for name in OPTIMIZERS.names()))
    others = [name for name in optax_names() if not OPTIMIZERS.is_registered(name)]
    print(f"  and any optax optimizer, kwargs as in its signature: {', '.join(others)}")
    print("config.schedule.name (with config.schedule.warmup_epochs and config.schedule.kwargs):")
    print("\n".join(_describe(SCHEDULES, name) for name in SCHEDULES.names()))
