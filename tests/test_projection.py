import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from latentviz import projection
from latentviz.projection import ProjectionError


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated clusters on the unit sphere in 24-D (planted structure)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 24)) * 4
    labels = np.repeat([0, 1, 2], 60)
    vectors = centres[labels] + rng.normal(size=(180, 24))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels, centres


def test_pca_matches_sklearn_and_places_new_points_exactly(blobs):
    vectors, _, _ = blobs
    coords, state = projection.fit(vectors, "pca", projection.default_params("pca"))
    reference = PCA(n_components=2).fit_transform(vectors)
    signs = np.sign((coords * reference).sum(0))
    assert np.allclose(coords, reference * signs, atol=1e-4)
    assert np.allclose(state["explained"], PCA(n_components=2).fit(vectors).explained_variance_ratio_, atol=1e-5)
    placed = projection.transform("pca", {}, state, vectors[:5])
    assert np.allclose(placed, coords[:5], atol=1e-5)


def test_umap_keeps_clusters_apart_and_places_new_points_in_their_cluster(blobs):
    vectors, labels, centres = blobs
    params = projection.default_params("umap")
    coords, state = projection.fit(vectors, "umap", params)
    assert coords.shape == (180, 2) and set(state) == {"a", "b"}
    centroids = np.stack([coords[labels == c].mean(0) for c in range(3)])
    rng = np.random.default_rng(1)
    new = centres[[0, 1, 2]] + rng.normal(size=(3, 24))
    placed = projection.transform("umap", params, state, new, vectors, coords)
    nearest_centroid = np.linalg.norm(placed[:, None] - centroids[None], axis=2).argmin(1)
    assert nearest_centroid.tolist() == [0, 1, 2]
    # A training point placed again lands among its own cluster, near where the fit put it.
    again = projection.transform("umap", params, state, vectors[:1], vectors, coords)
    spread = np.linalg.norm(coords[labels == 0] - centroids[0], axis=1).max()
    assert np.linalg.norm(again[0] - coords[0]) < spread


def test_umap_fit_is_reproducible_with_a_seed(blobs):
    vectors, _, _ = blobs
    params = projection.default_params("umap")
    first, _ = projection.fit(vectors[:60], "umap", params)
    second, _ = projection.fit(vectors[:60], "umap", params)
    assert np.array_equal(first, second)


def test_clusters_recover_planted_groups(blobs):
    vectors, labels, _ = blobs
    assert adjusted_rand_score(labels, projection.kmeans_clusters(vectors, 3)) == pytest.approx(1.0)
    coords, _ = projection.fit(vectors, "pca", {"seed": 0})
    assert adjusted_rand_score(labels, projection.hdbscan_clusters(coords, min_cluster_size=20)) > 0.9


def test_bad_requests(blobs):
    vectors, _, _ = blobs
    with pytest.raises(ProjectionError, match="at least 5"):
        projection.fit(vectors[:3], "pca", {})
    with pytest.raises(ProjectionError, match="unknown projection method 'tsne'"):
        projection.default_params("tsne")
    with pytest.raises(ProjectionError, match="k-means needs"):
        projection.kmeans_clusters(vectors, 1)


def test_cluster_words_follow_c_tf_idf():
    texts = [
        "the striker scored a goal",
        "a late goal for the striker",
        "the goal keeper saved it",
        "shares fell as markets closed",
        "markets rallied and shares rose",
        "the bank said markets were calm",
    ]
    words = projection.cluster_words(texts, ["sport"] * 3 + ["money"] * 3, top=2)
    assert words == {"money": ["markets", "shares"], "sport": ["goal", "striker"]}  # words of one text left out
    # the idf: "april" is as frequent as "goal" in sport (and first in a tie) but also in money:
    # log(1 + 4/4) < log(1 + 4/2)
    texts = ["goal april", "goal april", "shares april", "shares april"]
    assert projection.cluster_words(texts, ["sport", "sport", "money", "money"], top=2) == {
        "sport": ["goal", "april"],
        "money": ["shares", "april"],
    }


def test_umap_kernels_are_compiled_once_per_machine_not_once_per_process(blobs):
    from pathlib import Path

    import umap.umap_

    projection.fit(blobs[0][:60], "umap", projection.default_params("umap"))
    kernel = umap.umap_.smooth_knn_dist  # one of the numba kernels a fit compiles
    assert Path(kernel._cache._cache_file._index_path).exists()  # where a later process loads it from


def test_the_corpus_most_common_words_name_no_cluster():
    sport_words = [f"sport{chr(97 + i)}" for i in range(24)]
    money_words = [f"money{chr(97 + i)}" for i in range(24)]
    sport = [f"{sport_words[i % 24]} {sport_words[(i + 1) % 24]} said" for i in range(60)]
    money = [f"{money_words[i % 24]} {money_words[(i + 1) % 24]} said" for i in range(60)]
    words = projection.cluster_words(sport + money, ["sport"] * 60 + ["money"] * 60, top=3)
    # "said" is in every text, each pool word in 5 of 120 (4%): the common word tells no cluster apart
    assert len(words["sport"]) == len(words["money"]) == 3 and "said" not in words["sport"] + words["money"]
    assert set(words["sport"]) <= set(sport_words) and set(words["money"]) <= set(money_words)
    assert "said" in projection.cluster_words(sport[:40] + money[:40], ["sport"] * 40 + ["money"] * 40, top=30)["sport"]


def test_map_labels_name_each_area_by_its_own_words_coarse_first():
    rng = np.random.default_rng(0)
    vocabulary = {topic: [f"{topic}{chr(97 + i)}{chr(97 + j)}" for i in range(4) for j in range(5)] for topic in "pqrs"}
    centres = {"p": (0, 0), "q": (30, 0), "r": (0, 30), "s": (30, 30)}
    coords, texts, topics = [], [], []
    for topic, centre in centres.items():
        for _ in range(150):
            coords.append(rng.normal(centre, 1.0))
            texts.append(" ".join(rng.choice(vocabulary[topic], 4)))
            topics.append(topic)
    coords = np.array(coords)
    labels = projection.map_labels(coords, texts, levels=(4, 16))
    assert [label["level"] for label in labels] == sorted(label["level"] for label in labels)
    coarse = [label for label in labels if label["level"] == 0]
    assert len(coarse) == 4 and sum(label["size"] for label in coarse) == pytest.approx(1.0)
    for label in labels:  # every name is its own area's words, and sits on one of its points
        topic = label["text"][0]
        assert all(word[0] == topic for word in label["text"].split(" · "))
        assert np.hypot(label["x"] - centres[topic][0], label["y"] - centres[topic][1]) < 5
        assert np.isclose(coords, [label["x"], label["y"]]).all(axis=1).any()
    assert len([label for label in labels if label["level"] == 1]) > 8  # finer areas, named too


def test_map_labels_read_a_bounded_sample_of_a_large_map(monkeypatch):
    read = []
    monkeypatch.setattr(projection, "LABEL_MAX_TEXTS", 500)
    monkeypatch.setattr(projection, "cluster_words", lambda texts, clusters, top, counts: read.append(len(texts)) or {})
    coords = np.random.default_rng(0).normal(size=(5_000, 2))
    assert projection.map_labels(coords, ["word"] * 5_000, levels=(4,)) == []
    assert read == [500]


def test_texts_without_a_word_name_no_cluster_and_raise_nothing():
    assert projection.cluster_words(["12 34", "56 of", "78"], [0, 1, 1]) == {0: [], 1: []}
    assert projection.map_labels(np.random.default_rng(0).normal(size=(40, 2)), ["123"] * 40, levels=(2,)) == []
