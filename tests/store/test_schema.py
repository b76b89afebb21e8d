"""The workspace's schema: migrations, the version guard, ids that are never reused, what info reports."""

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
    assert store.schema_version() == SCHEMA_VERSION == 10
    assert store.captures().empty and not store.has_feature_activations(1) and not store.has_feature_dashboards(1)
    assert store.explanations(1).empty and store.label_scores(1).empty
    assert store.datasets()["name"].tolist() == ["old"]
    assert store.models().empty and store.add_model("vq", "m", "old", "minilm", {}) == 1


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
