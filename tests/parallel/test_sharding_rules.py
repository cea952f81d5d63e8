"""FSDP sharding rules: by size by default, regex rules first; optimizer state follows the same paths."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = r"""
import jax, optax
from jax.sharding import PartitionSpec as P
from imagenet_jax import models
from imagenet_jax.parallel import mesh as mesh_lib
from imagenet_jax.core.state import create_train_state

model = models.create("resnet18", num_classes=10)
optimizer = optax.sgd(0.1, momentum=0.9)
state = jax.eval_shape(lambda k: create_train_state(model, optimizer, k, (32, 32, 3)), jax.random.key(0))
mesh = mesh_lib.make_mesh(4)
shardings = mesh_lib.state_shardings(state, mesh, fsdp_min_size=2**16,
                                     rules=[("head", "fsdp"), ("stage4_block2/Conv_1", "replicate")])
print(shardings.params["stage4_block1"]["Conv_1"]["kernel"].spec)   # 3x3x512x512: split on a 512 dim
print(shardings.params["stage4_block2"]["Conv_1"]["kernel"].spec)   # rule: replicate
print(shardings.params["stem_conv"]["kernel"].spec)                 # 7x7x3x64 = 9408 < 2**16: replicated
print(shardings.params["head"]["kernel"].spec)                      # rule: 512x10, split on 512
print(shardings.opt_state[0].trace["stage4_block1"]["Conv_1"]["kernel"].spec)  # momentum follows
"""


def test_rules_and_size_threshold_decide_the_split():
    env = {**os.environ, "PYTHONPATH": REPO, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "P(None, None, 'fsdp', None)",
        "P()",
        "P()",
        "P('fsdp', None)",
        "P(None, None, 'fsdp', None)",
    ], lines
