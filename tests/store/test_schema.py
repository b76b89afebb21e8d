"""The workspace's schema: migrations, the version guard, ids that are never reused, what info reports."""

from pathlib import Path

import duckdb
import numpy as np
import pytest

from latentviz.store import SCHEMA_VERSION, Store, StoreError

from . import texts


def test_new_workspace_has_current_schema(store):
    assert store.schema_version() == SCHEMA_VERSION
    reopened = Store(store.path)  # migrating twice is a no-op
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.datasets().empty


def test_an_empty_duckdb_file_is_migrated(tmp_path):
    path = tmp_path / "old.duckdb"
    duckdb.connect(str(path)).close()
    assert Store(path).schema_version() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    Store(path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_a_version_1_workspace_is_migrated_and_keeps_its_data(tmp_path):
    from latentviz.store import MIGRATIONS

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.execute("INSERT INTO datasets (name, source) VALUES ('old', 'test')")
    con.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 13
    assert store.captures().empty and not store.has_feature_activations(1) and not store.has_feature_dashboards(1)
    assert store.explanations(1).empty and store.label_scores(1).empty
    assert store.datasets()["name"].tolist() == ["old"]
    assert store.models().empty and store.add_model("vq", "m", "old", "minilm", {}) == 1


def test_a_version_10_workspace_moves_its_vectors_and_activations_into_parquet_shards(tmp_path):
    from safetensors.numpy import save_file

    from latentviz import activations
    from latentviz.store import MIGRATIONS

    path = tmp_path / "v10.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:10], start=1):
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (?)", [version])
    con.execute("INSERT INTO datasets (name, source) VALUES ('old', 'test')")
    con.execute("INSERT INTO texts VALUES (1, 'old', 'a', NULL, NULL), (2, 'old', 'b', NULL, NULL)")
    con.execute(
        "INSERT INTO encodings (id, dataset, backbone, layer, dim, complete) VALUES (4, 'old', 'tiny', 1, 3, true)"
    )
    con.execute("INSERT INTO encoding_vectors VALUES (4, 2, [4, 5, 6]), (4, 1, [1, 2, 3])")
    con.execute("INSERT INTO feature_activations VALUES (9, 1, 0, 7, 0.5), (9, 2, 3, 7, 1.5), (9, 2, 1, 2, 2.0)")
    states = np.arange(6, dtype=np.float32).reshape(3, 2)
    old_shard = tmp_path / "v10.cache" / "activations" / "5" / "shard_00000.safetensors"
    old_shard.parent.mkdir(parents=True)
    save_file({"states": states}, old_shard)
    for capture_id, shard_path in ((5, old_shard), (6, tmp_path / "cleared.safetensors")):  # 6: its cache is gone
        con.execute(
            "INSERT INTO captures (id, dataset, backbone, layer, complete) VALUES (?, 'old', 'lm', 1, true)",
            [capture_id],
        )
        con.execute("INSERT INTO capture_shards VALUES (?, 0, ?, 3)", [capture_id, str(shard_path)])
        con.execute(
            "INSERT INTO capture_tokens VALUES (?, 0, 0, 1, 0, 'a'), (?, 0, 1, 2, 0, 'b'), (?, 0, 2, 2, 1, 'c')",
            [capture_id] * 3,
        )
    con.close()
    store = Store(path)
    assert activations.load(store, 5)[1].tolist() == states.tolist() and not old_shard.exists()
    assert store.captures().set_index("id")["tokens"].to_dict() == {5: 3, 6: 0}
    assert not store.capture(6)["complete"] and store.capture_tokens(6).empty  # captured again from scratch
    ids, vectors = store.vectors(4)
    assert ids.tolist() == [1, 2] and vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert store.encodings()["vectors"].tolist() == [2]
    assert store.feature_values(9, 7).tolist() == [0.5, 1.5] and store.has_feature_activations(9)
    assert sorted(
        p.parent.relative_to(Path(store.arrays_location)).as_posix()
        for p in Path(store.arrays_location).rglob("*.parquet")
    ) == [
        "captures/capture_id=5",
        "encodings/encoding_id=4",
        "feature_activations/model_id=9",
    ]
    with duckdb.connect(str(path)) as con:  # the rows left the file
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert not tables & {"encoding_vectors", "feature_activations", "capture_shards"}


def test_ids_are_never_reused_after_a_delete(store):
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    first_ids = store.texts("d")["id"].tolist()
    encoding_id = store.encoding_id("d", "tiny", 1, 2)
    projection_id = store.add_projection(encoding_id, "pca", {}, {}, first_ids, np.zeros((2, 2), np.float32))
    store.delete_dataset("d")
    store.add_dataset("d", "test", texts("c c c c", "d d d d"))
    assert min(store.texts("d")["id"]) > max(first_ids)
    new_encoding = store.encoding_id("d", "tiny", 1, 2)
    assert new_encoding > encoding_id
    ids = store.texts("d")["id"].to_numpy()
    assert store.add_projection(new_encoding, "pca", {}, {}, ids, np.zeros((2, 2), np.float32)) > projection_id


def test_info_is_plain_json(store):
    import json

    store.add_dataset("d", "test", texts("a a a a"))
    info = json.loads(json.dumps(store.info()))
    assert info["datasets"][0]["name"] == "d" and info["datasets"][0]["texts"] == 1
