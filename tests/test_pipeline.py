"""The map steps the CLI and the pages share: placing new text, clustering a map."""

import numpy as np
import pytest

from latentviz import pipeline, projection
from latentviz.store import Store


def test_place_new_text_among_its_neighbours(mapped_workspace):
    store = Store(mapped_workspace)
    projections = store.projections()
    for projection_id in projections["id"]:
        points = store.projection_points(int(projection_id))
        known = points["text"].iloc[7]
        placed = pipeline.place(store, int(projection_id), [known, "An entirely new sentence about football."], k=5)
        assert placed.points.shape == (2, 3)
        # A stored sentence placed again finds itself first, with cosine 1.
        first = placed.neighbours[0].iloc[0]
        assert first["text"] == known and first["similarity"] == pytest.approx(1.0, abs=1e-5)
        xy = points[["x", "y"]].to_numpy()
        if projections.set_index("id").loc[projection_id, "method"] == "pca":  # exact: lands on its own point
            assert np.allclose(placed.points[["x", "y"]].to_numpy()[0], xy[7], atol=1e-4)
        else:  # the random tiny model has no structure to keep (see test_projection for that): on the map, at least
            low, high = xy.min(0) - np.ptp(xy, 0), xy.max(0) + np.ptp(xy, 0)
            assert ((placed.points[["x", "y"]].to_numpy() > low) & (placed.points[["x", "y"]].to_numpy() < high)).all()
        assert list(placed.neighbours[1].columns) == ["id", "text", "label", "similarity", "x", "y"]


def test_placing_with_the_pages_index_finds_the_same_as_without(mapped_workspace):
    from latentviz.neighbours import CosineIndex

    store = Store(mapped_workspace, read_only=True)
    for row in store.projections().itertuples():
        index = CosineIndex(*store.vectors(int(row.encoding_id)))  # what the map page holds for its clicks
        text = store.projection_points(int(row.id))["text"].iloc[3]
        own, given = (pipeline.place(store, int(row.id), [text], k=4, index=i) for i in (None, index))
        assert own.neighbours[0]["id"].tolist() == given.neighbours[0]["id"].tolist()
        assert np.allclose(own.points[["x", "y"]], given.points[["x", "y"]], atol=1e-4)


def test_clusters_name_every_text_of_the_map(mapped_workspace):
    store = Store(mapped_workspace, read_only=True)
    projection_id = int(store.projections()["id"].iloc[0])
    points = store.projection_points(projection_id)
    named = pipeline.clusters(store, projection_id, "k-means", 4)
    assert sorted(named.index) == sorted(points["id"]) and named.nunique() == 4
    assert all(name.split(" · ")[0] in {"0", "1", "2", "3"} for name in named)  # "2 · said, market": id, words
    hdbscan = pipeline.clusters(store, projection_id, "HDBSCAN")
    assert sorted(hdbscan.index) == sorted(points["id"])
    assert all(name == projection.NOISE or name.split(" · ")[0].isdigit() for name in hdbscan)
    with pytest.raises(projection.ProjectionError, match="unknown clustering"):
        pipeline.clusters(store, projection_id, "spectral")
