"""Evaluators of one eval set share a data pass and a forward pass: the same numbers, one read, one forward."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from imagenet_jax import evaluators
from imagenet_jax.config.files import load_config_file
from imagenet_jax.data import inputs, pipeline
from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluate import EvalState
from imagenet_jax.parallel import mesh as mesh_lib

EXAMPLES = 203


class TinyConvNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3), strides=2)(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def _runner(fashion_mnist_dir, only=None, workdir="", main_eval=None):
    config = load_config_file("configs/default.py")
    config.main_eval = ml_collections.ConfigDict(main_eval or {"type": "classification"})
    config.data_dir, config.eval_split, config.cache_dataset = fashion_mnist_dir, f"test[:{EXAMPLES}]", False
    config.evals = ml_collections.ConfigDict({"pc": {"type": "per_class"}, "cal": {"type": "calibration", "bins": 5},
                                              "crops": {"type": "multicrop", "mode": "center", "scales": (28, 32)}})
    info = pipeline.load_dataset(config.dataset, fashion_mnist_dir, "", config.train_split, config.eval_split)
    model = TinyConvNet()
    variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    mesh = mesh_lib.make_data_mesh()
    replicated = mesh_lib.replicated(mesh)
    state = jax.device_put(EvalState(params=variables["params"], batch_stats={}), replicated)
    context = evaluators.EvalContext(config, model, 10, mesh, replicated, 32, workdir, 0, 1)
    return evaluators.EvalRunner(config, info, context, only=only), state


def test_sets_sharing_a_pass_give_the_numbers_they_give_alone(fashion_mnist_dir):
    runner, state = _runner(fashion_mnist_dir)
    together = runner.evaluate(state, 1)
    assert list(together) == runner.names == [f"test[:{EXAMPLES}]", "cal", "crops", "pc"]  # main set first
    for name in together:
        alone_runner, _ = _runner(fashion_mnist_dir, only=[name])
        alone = alone_runner.evaluate(state, 1)[name]
        assert together[name].keys() == alone.keys()
        for key, value in alone.items():
            assert together[name][key] == pytest.approx(value, abs=1e-6), (name, key)
        assert together[name]["num_examples"] == EXAMPLES
    assert together["pc"]["accuracy"] == pytest.approx(together[f"test[:{EXAMPLES}]"]["top1"])


def test_the_main_set_per_class_and_calibration_read_the_data_once_and_run_the_model_once(fashion_mnist_dir,
                                                                                          monkeypatch):
    passes = []
    original = inputs.eval_stream

    def counting_stream(config, eval_set, **kwargs):
        stream = original(config, eval_set, **kwargs)
        return lambda: (passes.append(eval_set.name), stream())[1]

    monkeypatch.setattr(inputs, "eval_stream", counting_stream)
    runner, state = _runner(fashion_mnist_dir)
    runner.evaluate(state, 1)
    assert sorted(passes) == sorted([f"test[:{EXAMPLES}]", "crops"])  # pc and cal rode along with the main set
    (group, shared_step), *_ = runner._passes
    assert [evaluator.name for evaluator in group] == [f"test[:{EXAMPLES}]", "cal", "pc"]
    batch = mesh_lib.global_batch(next(group[0].batches()), runner.evaluators[0].context.mesh)

    def forward_ops(step) -> int:
        text = step.lower(state, batch).compile().as_text()
        return sum(line.count(" convolution(") for line in text.splitlines())

    single = runner.evaluators[0].context.jit(group[0].pass_step)
    assert forward_ops(single) >= 1
    assert forward_ops(shared_step) == forward_ops(single)  # XLA computed the shared forward pass once
    np.testing.assert_equal(runner.evaluate(state, 2)["cal"]["num_examples"], EXAMPLES)


def test_the_main_set_writes_the_per_class_and_calibration_files_of_the_evaluators_with_its_own_metrics(
        fashion_mnist_dir, tmp_path):
    import json

    writing = {"type": "classification", "write": ("per_class", "calibration")}
    runner, state = _runner(fashion_mnist_dir, workdir=str(tmp_path), main_eval=writing, only=[f"test[:{EXAMPLES}]",
                                                                                               "pc", "cal"])
    results = runner.evaluate(state, 7)
    plain, _ = _runner(fashion_mnist_dir)
    assert results[f"test[:{EXAMPLES}]"] == plain.evaluate(state, 7)[f"test[:{EXAMPLES}]"]  # its metrics, no more
    main_dir, eval_dir = tmp_path / "eval" / f"test[:{EXAMPLES}]" / "7", tmp_path / "eval"
    assert json.loads((main_dir / "per_class.json").read_text()) == json.loads(
        (eval_dir / "pc" / "7" / "per_class.json").read_text())
    written = json.loads((main_dir / "calibration.json").read_text())
    reference = json.loads((eval_dir / "cal" / "7" / "calibration.json").read_text())  # 5 bins there, 15 here
    assert len(written["bins"]) == 15 and sum(b["count"] for b in written["bins"]) == EXAMPLES
    assert sum(b["count"] for b in reference["bins"]) == EXAMPLES
    with pytest.raises(ConfigError, match=r"config.main_eval.write=\('confusion',\)"):
        evaluators.get("classification").validate("main", {"write": ("confusion",)}, "config.main_eval")
