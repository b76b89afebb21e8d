"""2-D maps of sentence vectors: UMAP (cosine) or PCA, plus placement of new text on a fitted map.

A fitted reducer is kept as plain arrays (PCA: mean and components; UMAP: its curve parameters
a, b next to the stored training vectors and coordinates), never as a pickle, so a map shared as a
workspace file is safe to open. New points are placed the way `umap.UMAP.transform` does it:
exact cosine neighbours in the training set, UMAP's fuzzy membership weights, a weighted-mean
start, then a short optimisation with the training layout held fixed.
"""

from __future__ import annotations

import functools

import numpy as np

from latentviz.errors import LatentvizError

METHODS = ("umap", "pca")
MIN_POINTS = 5
NOISE = "noise"  # the name of HDBSCAN's unclustered points (drawn in quiet grey under the clusters)


class ProjectionError(LatentvizError):
    """A map that cannot be computed from the given vectors."""


def default_params(method: str, seed: int = 42) -> dict:
    if method == "umap":
        return {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": seed}
    if method == "pca":
        return {"seed": seed}
    raise ProjectionError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")


def fit(vectors: np.ndarray, method: str, params: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(coordinates (N, 2), reducer state arrays) for `vectors` (N, D)."""
    if len(vectors) < MIN_POINTS:
        raise ProjectionError(f"a map needs at least {MIN_POINTS} encoded texts, got {len(vectors)}; add more texts")
    vectors = np.asarray(vectors, np.float32)
    if method == "pca":
        mean = vectors.mean(0)
        # SVD of the centred data: rows of vt are the principal directions, by decreasing variance.
        _, singular, vt = np.linalg.svd(vectors - mean, full_matrices=False)
        components = vt[:2]
        # Fix each component's sign (largest loading positive) so refits give the same picture.
        components *= np.sign(components[np.arange(2), np.abs(components).argmax(1)])[:, None]
        explained = singular[:2] ** 2 / max((singular**2).sum(), 1e-12)
        return (vectors - mean) @ components.T, {"mean": mean, "components": components, "explained": explained}
    if method == "umap":
        reducer = _umap().UMAP(
            n_components=2,
            n_neighbors=min(params["n_neighbors"], len(vectors) - 1),
            min_dist=params["min_dist"],
            metric=params["metric"],
            random_state=params["seed"],
            n_jobs=1,  # a seed makes UMAP single-threaded anyway; saying so silences its warning
        )
        coords = reducer.fit_transform(vectors)
        return coords.astype(np.float32), {"a": np.float64(reducer._a), "b": np.float64(reducer._b)}
    raise ProjectionError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")


def transform(
    method: str,
    params: dict,
    state: dict[str, np.ndarray],
    new_vectors: np.ndarray,
    train_vectors: np.ndarray | None = None,
    train_coords: np.ndarray | None = None,
) -> np.ndarray:
    """Place new vectors (M, D) on a fitted map without refitting it."""
    new_vectors = np.asarray(new_vectors, np.float32)
    if method == "pca":
        return (new_vectors - state["mean"]) @ state["components"].T
    if method == "umap":
        return _umap_place(params, state, new_vectors, train_vectors, train_coords)
    raise ProjectionError(f"unknown projection method {method!r}")


@functools.cache  # once per process: every fit and every placed text asks
def _umap():
    """umap, with its numba kernels compiled to disk: they are compiled in every new process
    otherwise, about 10 s before a first map or a first placed text (umap does not ask numba to
    cache them, and numba keeps a cache only where asked)."""
    import sys
    import warnings

    import umap
    from numba.core.caching import NullCache
    from numba.core.errors import NumbaWarning
    from numba.core.registry import CPUDispatcher

    # pynndescent's search (over 4,096 points) holds pointers numba cannot write out: it compiles as before.
    warnings.filterwarnings("ignore", "Cannot cache compiled function", NumbaWarning)
    for name, module in list(sys.modules.items()):
        if name.startswith(("umap.", "pynndescent.")):
            for kernel in vars(module).values():
                if isinstance(kernel, CPUDispatcher) and isinstance(kernel._cache, NullCache):
                    kernel.enable_caching()
    return umap


def compile_kernels() -> None:
    """Fit and place a tiny UMAP map once, so umap's kernels are compiled to disk before any real map:
    `make setup` runs it, and a fresh environment's first map (and each process of the test suite,
    which would otherwise compile them side by side) loads them instead."""
    vectors = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    params = default_params("umap")
    coords, state = fit(vectors, "umap", params)
    transform("umap", params, state, vectors[:2], vectors, coords)


def _cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def _umap_place(
    params: dict,
    state: dict,
    new_vectors: np.ndarray,
    train_vectors: np.ndarray,
    train_coords: np.ndarray,
    n_epochs: int = 100,
) -> np.ndarray:
    import scipy.sparse

    _umap()
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import compute_membership_strengths, init_graph_transform, make_epochs_per_sample, smooth_knn_dist

    k = min(params["n_neighbors"], len(train_vectors) - 1)
    distances = _cosine_distances(new_vectors, train_vectors)
    indices = np.argpartition(distances, k, axis=1)[:, :k]
    near = np.take_along_axis(distances, indices, axis=1)
    order = np.argsort(near, axis=1)
    indices = np.take_along_axis(indices, order, axis=1).astype(np.int32)
    near = np.take_along_axis(near, order, axis=1).astype(np.float32)

    # UMAP's transform uses local_connectivity - 1 for new points (they are not in the graph yet).
    sigmas, rhos = smooth_knn_dist(near, float(k), local_connectivity=0.0)
    rows, cols, vals, _ = compute_membership_strengths(indices, near, sigmas, rhos, bipartite=True)
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(new_vectors), len(train_vectors)))
    csr = graph.tocsr()
    csr.eliminate_zeros()
    train_coords = np.ascontiguousarray(train_coords, dtype=np.float32)  # numba kernels want C order
    start = np.ascontiguousarray(init_graph_transform(csr, train_coords), dtype=np.float32)

    graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    graph.eliminate_zeros()
    rng_state = (
        np.random.RandomState(params["seed"])
        .randint(np.iinfo(np.int32).min, np.iinfo(np.int32).max, 3)
        .astype(np.int64)
    )
    return optimize_layout_euclidean(
        start,
        train_coords.copy(),
        graph.row,
        graph.col,
        n_epochs,
        len(train_vectors),
        make_epochs_per_sample(graph.data, n_epochs),
        float(state["a"]),
        float(state["b"]),
        rng_state,
        1.0,
        0.25,
        5.0,
        False,  # repulsion, initial learning rate (UMAP's 1.0 / 4 for transform), negative samples, parallel
    )


def kmeans_clusters(vectors: np.ndarray, k: int, seed: int = 42) -> np.ndarray:
    """Cluster ids (0..k-1) from k-means on the unit-normalised vectors (spherical k-means, close to cosine)."""
    from sklearn.cluster import KMeans

    if not 2 <= k <= len(vectors):
        raise ProjectionError(f"k-means needs 2 ≤ k ≤ number of texts ({len(vectors)}), got {k}")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(unit)


def hdbscan_clusters(coords: np.ndarray, min_cluster_size: int = 25) -> np.ndarray:
    """Cluster ids from HDBSCAN on the 2-D map (-1 is noise): finds the islands one sees."""
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=min(min_cluster_size, max(2, len(coords) // 2))).fit_predict(coords)


COMMON_SHARE, COMMON_MIN_TEXTS = 0.05, 100  # cluster_words: a word in over 5% of 100+ texts names no cluster


def word_counts(texts: list[str]):
    """Each text's word counts (a sparse texts × words matrix) and the words, as `cluster_words`
    reads texts: English stop words, numbers and words under three letters left out."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
    try:
        return vectorizer.fit_transform(texts), vectorizer.get_feature_names_out()
    except ValueError:  # not one word in them (numbers, stop words): nothing to name a cluster by
        return sparse.csr_matrix((len(texts), 0)), np.array([], dtype=str)


def cluster_words(texts: list[str], clusters: list, top: int = 3, counts=None) -> dict:
    """Each cluster's most distinctive words by class-based TF-IDF (c-TF-IDF, as BERTopic defines it):
    a cluster's texts are one document; W(t, c) = tf(t, c) / Σ_t tf(t, c) · log(1 + A / f(t)), with
    f(t) the word's count over all clusters and A the mean word count of a cluster. English stop
    words, words in under two texts and, in a corpus of 100 texts or more, words in over 5% of them
    (BBC News: "said", in 16% of its sentences, and "year") are left out. `counts`: `word_counts(texts)`,
    when it is at hand (several clusterings of the same texts). Returns {cluster: [word, ...]}."""
    from scipy import sparse

    if not texts:
        return {}
    per_text, vocabulary = word_counts(texts) if counts is None else counts
    names = sorted(set(clusters), key=str)
    row = {name: i for i, name in enumerate(names)}
    members = sparse.csr_matrix(
        (np.ones(len(texts)), ([row[cluster] for cluster in clusters], np.arange(len(texts)))),
        shape=(len(names), len(texts)),
    )
    counts = (members @ per_text).toarray().astype(float)  # a cluster's texts as one document
    document_frequency = (per_text > 0).sum(axis=0).A1
    counts[:, document_frequency < 2] = 0  # a word of one text names no cluster
    if len(texts) >= COMMON_MIN_TEXTS:  # nor does one of the corpus's most common words
        counts[:, document_frequency > COMMON_SHARE * len(texts)] = 0
    per_cluster = counts.sum(axis=1, keepdims=True)
    overall = counts.sum(axis=0)
    idf = np.log(1 + per_cluster.mean() / np.maximum(overall, 1))
    weights = counts / np.maximum(per_cluster, 1) * idf
    return {
        name: [vocabulary[i] for i in np.argsort(-weight, kind="stable")[:top] if weight[i] > 0]
        for name, weight in zip(names, weights, strict=True)
    }


LABEL_LEVELS = (6, 24, 96)  # areas named at each zoom level: four times as many per level, each half as wide
LABEL_MAX_TEXTS = 20_000  # texts read to name the areas of a larger map (a random sample): 200 an area


def map_labels(coords: np.ndarray, texts: list[str], levels=LABEL_LEVELS, seed: int = 0) -> list[dict]:
    """Names for areas of a map, coarse to fine, as Embedding Atlas shows them by zoom level: at each
    level the map is cut into `levels[level]` areas by k-means on the 2-D points, and each area is
    named by its two most distinctive words (`cluster_words`). Each label sits on the area's point
    nearest its centre (the centre of a crescent can lie in empty space). Returns [{x, y, text,
    level, size}], coarse levels first and larger areas first within a level (the order a crowded
    view keeps them in), `size` the area's share of the texts read; an area without a distinctive word
    is left unnamed. The work is bounded: a map of more than LABEL_MAX_TEXTS texts is named from a sample."""
    from sklearn.cluster import KMeans

    chosen = np.arange(len(coords))
    if len(chosen) > LABEL_MAX_TEXTS:
        chosen = np.sort(np.random.default_rng(seed).choice(len(chosen), LABEL_MAX_TEXTS, replace=False))
    points = np.asarray(coords, np.float64)[chosen]
    read = [texts[i] for i in chosen]
    counts = word_counts(read)  # once for every level
    labels = []
    for level, areas in enumerate(levels):
        areas = min(areas, len(points) // 10)  # ten texts an area at least, or the words say nothing
        if areas < 2:
            break
        kmeans = KMeans(n_clusters=areas, n_init=1, random_state=seed).fit(points)
        words = cluster_words(read, kmeans.labels_.tolist(), top=2, counts=counts)
        for area, centre in enumerate(kmeans.cluster_centers_):
            if not words.get(area):
                continue
            members = points[kmeans.labels_ == area]
            x, y = members[np.argmin(((members - centre) ** 2).sum(axis=1))].tolist()
            share = len(members) / len(points)
            labels.append({"x": x, "y": y, "text": " · ".join(words[area]), "level": level, "size": share})
    return sorted(labels, key=lambda label: (label["level"], -label["size"]))  # the order they are placed in
