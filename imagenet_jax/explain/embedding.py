"""What the classifier's last representation groups together: penultimate features, 2-D maps, nearest neighbours.

    features = penultimate_features(network, images)              # [N, D], the input of the `head` classifier
    points = project(features, "tsne")                             # [N, 2]
    png = embedding_figure(points, labels, class_names, "t-SNE of the penultimate layer")
    indices = nearest_neighbours(features[:8], features, k=5)      # AlexNet's Fig. 4 retrieval
    png = neighbours_figure(images[:8], images, indices)
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain.figures import figure_png, new_figure
from imagenet_jax.explain.network import Network

PROJECTIONS = ("tsne", "umap", "pca")
METRICS = ("cosine", "euclidean")
# t-SNE's perplexity (the effective neighbour count): scikit-learn's default 30, capped below N / 3 so that a few
# dozen points (a test, a small report) still have a valid one.
PERPLEXITY = 30.0


def penultimate_features(network: Network, images: np.ndarray | jax.Array, batch_size: int = 256,
                         classifier: str = "head") -> np.ndarray:
    """float32 [N, D]: the input of the `classifier` module, flattened, for pixel images [N, H, W, C]."""
    network.check_layer(classifier)
    images = np.asarray(images, np.float32)

    def features(batch):
        seen: list[jax.Array] = []

        def interceptor(next_fun, args, kwargs, context):
            if context.method_name == "__call__" and "/".join(map(str, context.module.path)) == classifier:
                seen.append(args[0])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(interceptor):
            network.logits(batch)
        if len(seen) != 1:
            raise ConfigError(f"classifier={classifier!r} is called {len(seen)} times per forward pass, not once.")
        return seen[0].reshape(seen[0].shape[0], -1).astype(jnp.float32)

    compiled = jax.jit(features)
    size = min(batch_size, len(images))
    out = []
    for start in range(0, len(images), size):
        batch = images[start:start + size]
        # The last batch is padded to the same shape, so one compiled program serves every batch.
        padded = np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), np.float32)])
        out.append(np.asarray(compiled(padded))[:len(batch)])
    return np.concatenate(out)


def project(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """[N, 2] projection of features [N, D]: "tsne" (scikit-learn, perplexity min(30, (N - 1) / 3)), "umap", "pca"."""
    features = np.asarray(features, np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(PERPLEXITY, max(1.0, (len(features) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ImportError("project(method='umap') needs umap-learn: pip install umap-learn") from error
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features)
    raise ConfigError(f"method={method!r} is not a projection; choose one of {', '.join(PROJECTIONS)}.")


def nearest_neighbours(queries: np.ndarray, gallery: np.ndarray, k: int = 5, metric: str = "cosine",
                       exclude_self: bool = False) -> np.ndarray:
    """int [Q, k] gallery indices nearest to each query, nearest first (exclude_self: queries are gallery[:Q])."""
    if metric not in METRICS:
        raise ConfigError(f"metric={metric!r} is not one of {', '.join(METRICS)}.")
    queries, gallery = np.asarray(queries, np.float64), np.asarray(gallery, np.float64)
    if metric == "cosine":
        unit_q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        unit_g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        distances = 1.0 - unit_q @ unit_g.T
    else:
        distances = ((queries[:, None, :] - gallery[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        if len(queries) > len(gallery):
            raise ValueError("exclude_self needs the queries to be the first rows of the gallery")
        distances[np.arange(len(queries)), np.arange(len(queries))] = np.inf
    available = len(gallery) - (1 if exclude_self else 0)
    if not 0 < k <= available:
        raise ConfigError(f"k={k} must be between 1 and {available} (the gallery's size).")
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def embedding_figure(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """PNG (800x700 px) of 2-D points coloured by class, with a legend of the classes present."""
    import matplotlib

    points, labels = np.asarray(points), np.asarray(labels)
    figure = new_figure(8, 7, dpi=100)
    axes = figure.add_subplot()
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for label in np.unique(labels):
        chosen = labels == label
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        axes.scatter(points[chosen, 0], points[chosen, 1], s=8, color=cmap(int(label) % cmap.N), label=name)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best", fontsize=8, markerscale=2)
    return figure_png(figure)


def neighbours_figure(query_images: np.ndarray, gallery_images: np.ndarray, indices: np.ndarray,
                      labels: np.ndarray | None = None, class_names: Sequence[str] | None = None) -> bytes:
    """PNG with one row per query: the query, then its k neighbours (AlexNet Fig. 4); titles name gallery labels.

    `labels` are the gallery's labels (the queries' when they are the gallery's first rows); images are pixels.
    """
    indices = np.asarray(indices)
    rows, k = indices.shape
    figure = new_figure(1.2 * (k + 1), 1.3 * rows, dpi=100)
    for row in range(rows):
        shown = [query_images[row]] + [gallery_images[index] for index in indices[row]]
        for column, image in enumerate(shown):
            axes = figure.add_subplot(rows, k + 1, row * (k + 1) + column + 1)
            image = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
            axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
            axes.set_xticks([])
            axes.set_yticks([])
            if labels is not None and column > 0:
                label = int(np.asarray(labels)[indices[row, column - 1]])
                axes.set_title(class_names[label] if class_names else str(label), fontsize=7)
            elif column == 0:
                axes.set_title("query", fontsize=7)
    return figure_png(figure)
