"""Penultimate features, 2-D projections, nearest neighbours (scikit-learn as the oracle) and the figures."""

from __future__ import annotations

import io

import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import embedding
from tests.explain import tiny_network


def test_penultimate_features_are_the_head_input_that_gives_the_logits():
    network = tiny_network.untrained()
    images, _ = tiny_network.fashion_test_images(5)
    features = embedding.penultimate_features(network, images, batch_size=2)  # 2 + 2 + 1 (padded) batches
    assert features.shape == (5, 32)
    head = network.variables["params"]["head"]
    np.testing.assert_allclose(features @ np.asarray(head["kernel"]) + np.asarray(head["bias"]),
                               np.asarray(network.logits(jnp.asarray(images))), rtol=1e-4, atol=1e-4)
    # And by another route: the last stage's output, globally average-pooled, is the head's input in a ResNet.
    _, last = network.logits_and_activation(jnp.asarray(images), "stage3_block1")
    np.testing.assert_allclose(features, np.asarray(last).mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_neighbours_equal_scikit_learns(metric):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    gallery, queries = rng.normal(size=(60, 12)), rng.normal(size=(7, 12))
    oracle = NearestNeighbors(n_neighbors=4, metric=metric, algorithm="brute").fit(gallery)
    np.testing.assert_array_equal(embedding.nearest_neighbours(queries, gallery, k=4, metric=metric),
                                  oracle.kneighbors(queries, return_distance=False))
    # Queries drawn from the gallery: exclude_self drops the query itself, as kneighbors() without X does.
    np.testing.assert_array_equal(embedding.nearest_neighbours(gallery, gallery, k=3, metric=metric, exclude_self=True),
                                  oracle.kneighbors(n_neighbors=3, return_distance=False))


def test_nearest_neighbours_reject_an_unknown_metric():
    with pytest.raises(ConfigError, match="cosine, euclidean"):
        embedding.nearest_neighbours(np.ones((1, 2)), np.ones((3, 2)), metric="manhattan")


def _clusters(per_class: int = 30, classes: int = 4, dim: int = 20):
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10.0, size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_projection_keeps_separated_clusters_separated(method):
    features, labels = _clusters()
    points = embedding.project(features, method, seed=0)
    assert points.shape == (len(labels), 2)
    neighbours = embedding.nearest_neighbours(points, points, k=5, metric="euclidean", exclude_self=True)
    assert (labels[neighbours] == labels[:, None]).mean() > 0.95  # 5-NN accuracy in 2-D


def test_umap_missing_says_how_to_install_it():
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install umap-learn"):
            embedding.project(np.ones((10, 3)), "umap")
    else:
        pytest.skip("umap-learn is installed")


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_embedding_figure_is_a_non_blank_png_with_a_colour_per_class():
    features, labels = _clusters()
    image = _decode(embedding.embedding_figure(features[:, :2], labels, ["a", "b", "c", "d"], "clusters"))
    assert image.shape == (700, 800, 3)
    colours = {tuple(pixel) for pixel in image.reshape(-1, 3)[::7]}
    assert len(colours) > 20 and image.std() > 5


def test_neighbours_figure_has_a_row_per_query_and_shows_the_images():
    images, labels = tiny_network.fashion_test_images(20)
    indices = embedding.nearest_neighbours(images.reshape(20, -1)[:3], images.reshape(20, -1), k=4,
                                           exclude_self=True)
    image = _decode(embedding.neighbours_figure(images[:3], images, indices, labels, [f"c{i}" for i in range(10)]))
    assert image.shape == (round(1.3 * 3 * 100), round(1.2 * 5 * 100), 3)
    assert (image < 50).mean() > 0.05  # the dark Fashion-MNIST backgrounds are drawn
