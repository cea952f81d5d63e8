"""python -m imagenet_jax.export: each format, run in its own runtime, gives our logits within 1e-4 on photographs."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import imagenet_jax
from imagenet_jax.export import __main__ as export_cli
from tests.api.conftest import PHOTOS, photo_bytes, preprocessed_photos

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def photos_and_logits(tiny_run):
    run = imagenet_jax.load_run(tiny_run)
    images = preprocessed_photos(run)
    assert images.shape == (len(PHOTOS), 28, 28, 1) and images.std() > 10  # real, varied pixels
    return images, run.logits(images, "best")


def test_stablehlo_deserialized_matches_for_any_batch_size(tiny_run, photos_and_logits, tmp_path):
    from imagenet_jax.export import stablehlo

    images, logits = photos_and_logits
    output = str(tmp_path / "model.stablehlo")
    assert export_cli.main(["--workdir", tiny_run, "--format", "stablehlo", "--output", output]) == 0
    exported = stablehlo.load(output)
    np.testing.assert_allclose(np.asarray(exported.call(images)), logits, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.asarray(exported.call(images[:1])), logits[:1], atol=TOLERANCE, rtol=0)
    metadata = json.loads(open(output + ".metadata.json").read())
    assert metadata["class_names"][0] == "T-shirt/top" and metadata["input"]["shape"] == ["batch", 28, 28, 1]
    assert "cpu" in metadata["platforms"] and metadata["calling_convention_version"] >= 9


def test_savedmodel_in_tensorflow_matches_on_pixels_and_on_jpeg_bytes(tiny_run, photos_and_logits, tmp_path):
    import tensorflow as tf

    images, logits = photos_and_logits
    output = str(tmp_path / "savedmodel")
    absl_level = logging.getLogger("absl").level
    assert export_cli.main(["--workdir", tiny_run, "--format", "savedmodel", "--output", output]) == 0
    assert logging.getLogger("absl").level == absl_level  # TF's save sets WARNING: a notebook's INFO lines vanish
    loaded = tf.saved_model.load(output)
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(served["logits"].numpy(), logits, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(served["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    encoded = tf.constant([photo_bytes(name) for name in PHOTOS])  # full-size JPEGs: preprocessing in the graph
    np.testing.assert_allclose(loaded.signatures["serve_encoded"](encoded=encoded)["logits"].numpy(), logits,
                               atol=TOLERANCE, rtol=0)


@pytest.mark.slow  # jax2onnx's conversion takes about a minute on 2 cores
def test_onnx_in_onnxruntime_matches(tiny_run, photos_and_logits, tmp_path):
    import onnx
    import onnxruntime

    images, logits = photos_and_logits
    output = str(tmp_path / "model.onnx")
    assert export_cli.main(["--workdir", tiny_run, "--format", "onnx", "--output", output]) == 0
    session = onnxruntime.InferenceSession(output, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"images": images})[0], logits, atol=TOLERANCE, rtol=0)
    props = {prop.key: prop.value for prop in onnx.load(output).metadata_props}
    assert props["class_names"].split("\n")[1] == "Trouser"


def test_unknown_checkpoint_is_an_error_not_a_traceback(tiny_run, tmp_path, capsys):
    assert export_cli.main(["--workdir", tiny_run, "--format", "stablehlo", "--output", str(tmp_path / "x"),
                            "--checkpoint", "5"]) == 2
    assert "no checkpoint at step 5" in capsys.readouterr().err


@pytest.mark.slow  # jax2onnx converts GoogLeNet's ~60 convolutions in about a minute
def test_onnx_of_googlenet_with_padded_and_ceil_mode_pools_matches_in_onnxruntime():
    import jax
    import jax.numpy as jnp
    import onnxruntime
    from jax2onnx import to_onnx

    from imagenet_jax import models
    from imagenet_jax.export.onnx_model import replayable
    from imagenet_jax.models.conv_lowering import conv_lowering_mode

    model = models.create("googlenet", num_classes=5, aux_logits=False)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x))(images)
    expected = np.asarray(model.apply(variables, images))
    spec = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    with conv_lowering_mode("xla"):
        onnx_model = to_onnx(replayable(lambda x: model.apply(variables, x), spec), [spec], model_name="googlenet")
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
