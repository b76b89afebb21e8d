"""Datasets, texts, encodings and projections in the store."""

import numpy as np
import pytest

from latentviz.store import Store, StoreError

from . import texts


def test_texts_are_stored_verbatim_and_searched_literally(store):
    nasty = "Robert'); DROP TABLE texts; -- 100% of_it"
    store.add_dataset("d", "test", texts(nasty, "plain sentence", "another 50_50 one"))
    assert store.texts("d")["text"].tolist() == [nasty, "plain sentence", "another 50_50 one"]
    assert store.search_texts("d", "drop table")["text"].tolist() == [nasty]
    assert store.search_texts("d", "0%")["text"].tolist() == [nasty]  # % is not a wildcard
    assert store.search_texts("d", "_")["text"].tolist() == [nasty, "another 50_50 one"]
    assert store.search_texts("d", "xyz").empty


def snapshot(store: Store) -> dict:
    return {
        "datasets": store.datasets().drop(columns="created").to_dict("records"),
        "texts": store.texts("d").to_dict("records") if store.has_dataset("d") else [],
    }


def test_a_rejected_dataset_leaves_the_store_unchanged(store):
    store.add_dataset("d", "test", texts("one sentence here", "two sentences here"))
    before = snapshot(store)
    with pytest.raises(StoreError, match="already exists"):
        store.add_dataset("d", "test", texts("three"))
    # A failure half way through (after the dataset row went in) rolls everything back.
    bad = texts("four").assign(metadata=[{"not": {1, 2}}])  # a set cannot become JSON
    with pytest.raises(TypeError):
        store.add_dataset("e", "test", bad)
    assert snapshot(store) == before
    assert not store.has_dataset("e")


def test_vectors_and_resume_bookkeeping(store):
    store.add_dataset("d", "test", texts("a a a a", "b b b b", "c c c c"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 2, 3)
    assert store.encoding_id("d", "tiny", 2, 3) == encoding_id  # same key, same row
    vectors = np.eye(3, dtype=np.float32)
    store.add_vectors(encoding_id, ids[:2], vectors[:2])
    assert store.encoded_text_ids(encoding_id) == set(ids[:2].tolist())
    store.add_vectors(encoding_id, ids[2:], vectors[2:])
    got_ids, got = store.vectors(encoding_id)
    assert got_ids.tolist() == ids.tolist() and np.array_equal(got, vectors)
    with pytest.raises(StoreError, match="dimension"):
        store.encoding_id("d", "tiny", 2, 4)


def test_projection_state_round_trips_without_pickle(store):
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 1, 2)
    state = {"mean": np.arange(3, dtype=np.float32), "a": np.float64(1.5)}
    coords = np.array([[0, 1], [2, 3]], np.float32)
    projection_id = store.add_projection(encoding_id, "pca", {"seed": 1}, state, ids, coords)
    row, params, loaded = store.projection(projection_id)
    assert row["method"] == "pca" and params == {"seed": 1}
    assert np.array_equal(loaded["mean"], state["mean"]) and loaded["a"] == 1.5
    assert store.find_projection(encoding_id, "pca", {"seed": 1}) == projection_id
    assert store.find_projection(encoding_id, "pca", {"seed": 2}) is None
    points = store.projection_points(projection_id)
    assert points[["x", "y"]].to_numpy().tolist() == coords.tolist()
    with pytest.raises(ValueError):  # object arrays would need pickle to read back: refused on write
        store.add_projection(encoding_id, "pca", {"seed": 3}, {"bad": np.array([{"x": 1}], dtype=object)}, ids, coords)
    assert store.find_projection(encoding_id, "pca", {"seed": 3}) is None


def test_delete_dataset_removes_everything_it_owns(store):
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    store.add_dataset("keep", "test", texts("c c c c"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 1, 2)
    store.add_vectors(encoding_id, ids, np.ones((2, 2), np.float32))
    store.add_projection(encoding_id, "pca", {}, {}, ids, np.zeros((2, 2), np.float32))
    store.delete_dataset("d")
    assert store.datasets()["name"].tolist() == ["keep"]
    assert store.encodings().empty and store.projections().empty
    with pytest.raises(StoreError, match="no dataset"):
        store.delete_dataset("d")
