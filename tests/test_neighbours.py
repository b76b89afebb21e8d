"""The map's one neighbour search: exact cosine neighbours from memory."""

import numpy as np
import pandas as pd
import pytest

from latentviz.errors import LatentvizError
from latentviz.neighbours import CosineIndex
from latentviz.store import Store


def test_the_index_ranks_stored_neighbours_by_cosine(mapped_workspace):
    store = Store(mapped_workspace, read_only=True)
    encoding_id = int(store.projections()["encoding_id"].iloc[0])
    text_ids, vectors = store.vectors(encoding_id)
    index = CosineIndex(text_ids, vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    fresh = store.vectors(encoding_id)[1]  # a matrix of its own, which the index may make unit where it lies
    assert CosineIndex(text_ids, fresh, copy=False).unit is fresh and np.allclose(fresh, index.unit, atol=1e-6)
    for row in (0, 7, 42):
        cosine = unit @ unit[row]
        cosine[row] = -np.inf  # itself left out
        expected = np.argsort(-cosine, kind="stable")[:5]
        ids, similarity = index.nearest_to_text(int(text_ids[row]), 5)
        assert ids.tolist() == text_ids[expected].tolist()
        assert similarity == pytest.approx(cosine[expected], abs=1e-5)
        ids, similarity = index.nearest(vectors[row] * 3.0, 6)  # any vector, at any scale: itself first
        assert ids[0] == text_ids[row] and similarity[0] == pytest.approx(1.0, abs=1e-5)


def test_the_in_memory_index_on_a_known_answer():
    vectors = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    index = CosineIndex(np.array([30, 10, 20, 40]), vectors)
    ids, similarity = index.nearest_to_text(30, 3)
    assert ids.tolist() == [20, 10, 40] and similarity == pytest.approx([np.sqrt(0.5), 0.0, -1.0])
    ids, similarity = index.nearest(np.array([0.9, 0.1]), 2)
    assert ids.tolist() == [30, 20] and similarity[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-6)
    with pytest.raises(LatentvizError, match="not in this encoding"):
        CosineIndex(np.array([1]), vectors[:1]).nearest_to_text(2, 3)
    points = pd.DataFrame(  # the map's rows in another order than the index's
        {"id": [40, 10, 30, 20], "text": ["d", "b", "a", "c"], "label": list("wxyz"), "x": [4.0, 2, 1, 3], "y": 0.0}
    )
    table = index.neighbours(points, 30, 3)
    assert table["id"].tolist() == [20, 10, 40] and table["text"].tolist() == ["c", "b", "d"]
    assert table["x"].tolist() == [3.0, 2.0, 4.0]
    assert table["similarity"].tolist() == pytest.approx([np.sqrt(0.5), 0, -1])
    assert list(table.columns) == ["id", "text", "label", "similarity", "x", "y"] and table.index.tolist() == [0, 1, 2]


def test_the_index_takes_the_store_s_vectors_without_a_copy_only_when_told():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 4)).astype(np.float32)
    unsorted = np.array([5, 3, 1, 2, 6, 4])
    given = vectors.copy()
    expected = CosineIndex(unsorted, vectors).nearest_to_text(3, 5)
    assert np.array_equal(vectors, given)  # copied: the caller's matrix untouched
    index = CosineIndex(unsorted, given, copy=False)  # out of id order: sorted into a copy all the same
    assert np.array_equal(given, vectors) and index.nearest_to_text(3, 5)[0].tolist() == expected[0].tolist()
    in_order = vectors[np.argsort(unsorted)]
    CosineIndex(np.sort(unsorted), in_order)
    assert np.array_equal(in_order, vectors[np.argsort(unsorted)])  # in id order too, copied unless told
    index = CosineIndex(np.sort(unsorted), in_order, copy=False)
    assert index.unit is in_order and np.allclose(np.linalg.norm(in_order, axis=1), 1.0)  # made unit where it lay
    ids, similarity = index.nearest_to_text(3, 5)
    assert ids.tolist() == expected[0].tolist() and similarity == pytest.approx(expected[1])
