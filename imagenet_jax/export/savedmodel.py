"""TensorFlow SavedModel via jax2tf (native serialization: the model is embedded as StableHLO, weights as
tf.Variables), with two serving signatures:

- `serving_default(images)`: uint8 [batch, S, S, C] (already eval-preprocessed) -> {"logits", "probabilities"};
- `serve_encoded(encoded)`: string [batch] of encoded images (JPEG, PNG, ...) of any size -> the same, after
  the run's eval preprocessing (imagenet_jax.data.preprocessing, TensorFlow ops saved into the graph).
"""

from __future__ import annotations

import logging
import os

from imagenet_jax.export.common import FORMATS, METADATA_FILE, ExportSource, write_metadata


@FORMATS.register("savedmodel")
def export(source: ExportSource, output: str, config) -> list[str]:
    """Writes the SavedModel directory OUTPUT (metadata in OUTPUT/assets.extra/metadata.json)."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    from imagenet_jax.data import inputs, preprocessing

    size, channels = source.image_size, source.channels
    converted = jax2tf.convert(source.apply, polymorphic_shapes=[None, f"(batch, {size}, {size}, {channels})"],
                               native_serialization_platforms=("cpu", "cuda", "tpu"), with_gradient=False)
    module = tf.Module()
    module.variables_tree = tf.nest.map_structure(tf.Variable, source.variables)
    preprocess = preprocessing.build(config.eval_preprocess, inputs.context(config, size, channels), "eval_preprocess")

    images_spec = tf.TensorSpec([None, size, size, channels], tf.uint8, name="images")

    @tf.function(input_signature=[images_spec], autograph=False)  # autograph would rewrite JAX's Python
    def serving_default(images):
        logits = converted(module.variables_tree, images)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="encoded")], autograph=False)
    def serve_encoded(encoded):
        images = tf.map_fn(lambda data: preprocess(data, tf.zeros((2,), tf.int64)), encoded,
                           fn_output_signature=tf.TensorSpec([size, size, channels], tf.uint8))
        return serving_default(images)

    module.serving_default, module.serve_encoded = serving_default, serve_encoded
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    try:
        tf.saved_model.save(module, output, signatures={"serving_default": serving_default,
                                                        "serve_encoded": serve_encoded})
    finally:  # TF "restores" absl's verbosity as an explicit WARNING: INFO logs of later runs would vanish
        absl_logger.setLevel(level)
    metadata_path = os.path.join(output, "assets.extra", METADATA_FILE)
    write_metadata(metadata_path, {**source.metadata, "format": "savedmodel", "signatures": {
        "serving_default": "images: uint8 [batch, S, S, C] -> logits, probabilities",
        "serve_encoded": "encoded: string [batch] (JPEG/PNG bytes, any size; eval preprocessing inside) -> same"}})
    return [output]
