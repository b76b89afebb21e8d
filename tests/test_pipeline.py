"""The map steps the CLI and the pages share: placing new text, clustering a map."""

import duckdb
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


def test_a_map_keeps_its_area_names_and_an_older_map_is_named_once(mapped_workspace, tmp_path):
    store = Store(mapped_workspace, read_only=True)
    projection_id = int(store.projections()["id"].iloc[0])
    points = store.projection_points(projection_id)
    stored = store.area_names(projection_id)  # named as the map was made: its first view only reads them
    assert stored and stored == projection.map_labels(points[["x", "y"]].to_numpy(), points["text"].tolist())
    assert pipeline.area_names(store, projection_id) == stored

    copy = tmp_path / "older.duckdb"
    copy.write_bytes(mapped_workspace.read_bytes())
    with duckdb.connect(str(copy)) as con:  # a map made before names were stored, as the migration leaves it
        con.execute("UPDATE projections SET area_names = NULL")
    older = Store(copy)
    assert older.area_names(projection_id) is None
    read_only = Store(copy, read_only=True)
    assert pipeline.area_names(read_only, projection_id) == stored and read_only.area_names(projection_id) is None
    assert pipeline.area_names(older, projection_id) == stored and older.area_names(projection_id) == stored
