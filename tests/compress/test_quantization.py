"""int8 quantization through qwix on our unmodified linen ResNet: the stored int8 kernels are the expected rounding,
the PTQ model's logits equal qwix's own fake-quantized reference with the same calibration, QAT trains end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

pytest.importorskip("qwix")

from imagenet_jax import models  # noqa: E402
from imagenet_jax.compress import quantization  # noqa: E402
from imagenet_jax.config import get_base_config  # noqa: E402
from imagenet_jax.config.recipes import model_options  # noqa: E402
from imagenet_jax.errors import ConfigError  # noqa: E402
from tests.conftest import read_metrics, run_main, tiny_run_overrides  # noqa: E402

MEAN, STD = 72.94, 90.02  # configs/default.py's normalization


@pytest.fixture(scope="module")
def setup(fashion_mnist_dir):
    """The default model with trained-looking weights (a few SGD steps would cost more: init is enough for parity),
    Fashion-MNIST calibration batches (train) and an eval batch (test), normalized as the loop does."""
    from imagenet_jax.data import pipeline
    from imagenet_jax.data import preprocessing as pp

    options = model_options("resnet_small", stage_sizes=(1, 1, 1), stage_widths=(32, 64, 128), stem_width=32,
                            stem="small_pool")
    model = models.create("resnet_small", num_classes=10, **options)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
    info = pipeline.load_dataset("fashion_mnist", fashion_mnist_dir)
    context = pp.PreprocessContext(image_size=28, crop_pct=1.0, channels=1)
    stream = pipeline.train_batches(info, global_batch_size=64, seed=0, start_step=0, preprocess=pp.build("", context),
                                    cache=False)
    calibration = [(jnp.asarray(next(stream)["image"], jnp.float32) - MEAN) / STD for _ in range(3)]
    test = next(pipeline.eval_batches(info, "test[:128]", local_batch_size=128, preprocess=pp.build("", context),
                                      cache=False)())
    return model, variables, calibration, (jnp.asarray(test["image"], jnp.float32) - MEAN) / STD


def test_int8_kernels_are_the_weights_rounded_at_a_per_output_channel_absmax_scale(setup):
    model, variables, calibration, _ = setup
    stats = quantization.calibrate(model, variables, calibration)
    _, quantized = quantization.quantize(model, variables, stats, (28, 28, 1))
    for path in (("stem_conv", "kernel"), ("stage2_block1", "Conv_0", "kernel"), ("head", "kernel")):
        weight = np.asarray(variables["params"][path[0]][path[1]] if len(path) == 2
                            else variables["params"][path[0]][path[1]][path[2]])
        stored = quantized["params"]
        for key in path:
            stored = stored[key]
        qarray = stored.array
        # qwix's int8 grid: absmax / 127.5 per output channel, so the largest weight fills the 127 bucket.
        scale = (np.max(np.abs(weight.reshape(-1, weight.shape[-1])), axis=0) / np.float32(127.5)).astype(np.float32)
        assert qarray.qvalue.dtype == jnp.int8
        np.testing.assert_allclose(np.asarray(qarray.scale).reshape(-1), scale, rtol=1e-6)
        scaled = weight / scale
        qvalue = np.asarray(qarray.qvalue)
        # Round to nearest: exact away from the half-way points (XLA's division may land +-1 ulp off a tie, e.g.
        # the channel's absmax itself at -127.5), and never more than half a step off anywhere.
        tie = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-4
        np.testing.assert_array_equal(qvalue[~tie], np.clip(np.round(scaled[~tie]), -128, 127))
        assert np.all(np.abs(qvalue - scaled) <= 0.5 + 1e-4) and weight.shape[-1] <= tie.sum() < 0.2 * tie.size
        dequantized = np.asarray(qarray.qvalue, np.float32) * np.asarray(qarray.scale)
        assert np.max(np.abs(dequantized - weight)) <= 0.5 * scale.max() + 1e-7


def test_ptq_logits_equal_qwix_fake_quantized_reference_with_the_same_calibration(setup):
    import qwix

    model, variables, calibration, images = setup
    stats = quantization.calibrate(model, variables, calibration)
    # One activation scale per conv/dense input: 2 convs per block, 3 shortcuts... every op is observed.
    observed = jax.tree.leaves(stats)
    assert observed and all(np.all(np.isfinite(leaf)) for leaf in observed)
    ptq_model, quantized = quantization.quantize(model, variables, stats, (28, 28, 1))
    logits = np.asarray(jax.jit(lambda x: ptq_model.apply(quantized, x, train=False))(images))
    # qwix's reference: its QT provider (quantize-dequantize in float) with the same static scales.
    reference_model = qwix.quantize_model(model, qwix.QtProvider(quantization.rules(static_activations=True)))
    reference = np.asarray(jax.jit(lambda x: reference_model.apply({**variables, "quant_stats": stats}, x,
                                                                   train=False))(images))
    scale = np.max(np.abs(reference))
    assert np.max(np.abs(logits - reference)) <= 1e-3 * scale
    np.testing.assert_array_equal(np.argmax(logits, -1), np.argmax(reference, -1))
    float_logits = np.asarray(model.apply(variables, images, train=False))
    assert np.max(np.abs(logits - float_logits)) > 10 * np.max(np.abs(logits - reference))  # it is quantized
    assert quantization.model_bytes(quantized["params"]) < 0.3 * quantization.model_bytes(variables["params"])


def test_quantization_config_errors_name_the_key():
    config = get_base_config()
    for key, value in [("mode", "int8"), ("weight_dtype", "int3"), ("calibration_steps", 0)]:
        bad = ml_collections.ConfigDict(config.to_dict())
        bad.quantization[key] = value
        with pytest.raises(ConfigError, match=rf"config\.quantization\.{key}"):
            quantization.validate_config(bad)
    bad = ml_collections.ConfigDict(config.to_dict())
    bad.quantization.mode, bad.quantization.act_dtype = "ptq", ""
    with pytest.raises(ConfigError, match=r"config\.quantization\.act_dtype"):
        quantization.validate_config(bad)


@pytest.mark.slow
def test_qat_trains_a_few_steps_end_to_end_and_learns(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "qat")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=12), "--config.quantization.mode=qat")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(workdir)
    train = [row for row in rows if row["split"] == "train"]
    assert all(np.isfinite(row["loss"]) for row in train) and train[-1]["loss"] < train[0]["loss"]
    final = [row for row in rows if row["split"] != "train" and row["step"] == 12][0]
    assert final["top1"] > 0.3  # chance is 0.1
