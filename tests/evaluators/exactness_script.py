"""Runs every evaluator on test[:203] of Fashion-MNIST with a fixed linear model; prints {set: metrics} as JSON.

argv: DATA_DIR GLOBAL_BATCH. Run with XLA_FLAGS=--xla_force_host_platform_device_count=N.
"""

import json
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from imagenet_jax import evaluators
from imagenet_jax.config.files import load_config_file
from imagenet_jax.data import pipeline
from imagenet_jax.evaluate import EvalState
from imagenet_jax.parallel import mesh as mesh_lib


class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def main(data_dir: str, batch: int) -> None:
    config = load_config_file("configs/default.py")
    config.data_dir, config.eval_split, config.cache_dataset = data_dir, "test[:203]", False
    config.evals = ml_collections.ConfigDict({
        "per_class": {"type": "per_class"}, "calibration": {"type": "calibration"},
        "ten_crop": {"type": "multicrop", "mode": "ten_crop", "resize": 32},
        "scales": {"type": "multicrop", "mode": "center", "scales": (28, 36)},
        "corrupt": {"type": "corruptions", "corruptions": ("gaussian_noise", "pixelate"), "severities": (1, 5)},
        "pgd": {"type": "adversarial", "eps": 8.0, "step_size": 2.0, "steps": 2},
    })
    evaluators.validate(config)
    info = pipeline.load_dataset(config.dataset, data_dir, "", config.train_split, config.eval_split)
    model = Linear()
    rng = np.random.default_rng(0)
    params = {"Dense_0": {"kernel": jnp.asarray(rng.normal(0, 0.05, (784, 10)), jnp.float32),
                          "bias": jnp.zeros(10)}}
    mesh = mesh_lib.make_data_mesh()
    replicated = mesh_lib.replicated(mesh)
    state = jax.device_put(EvalState(params=params, batch_stats={}), replicated)
    context = evaluators.EvalContext(config, model, 10, mesh, replicated, batch, "", 0, 1)
    print("RESULT " + json.dumps(evaluators.EvalRunner(config, info, context).evaluate(state, 1)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
