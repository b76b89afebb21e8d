"""Large arrays as Parquet shards beside the DuckDB file: written, read in place, replaced, deleted,
copied with the workspace, and nothing half-written when a change fails."""

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from latentviz import settings
from latentviz.store import Store, copy_workspace

from . import texts


def parquet_files(store: Store) -> list[str]:
    return sorted(
        path.relative_to(Path(store.arrays_location)).as_posix()
        for path in Path(store.arrays_location).rglob("*.parquet")
    )


def test_vectors_are_parquet_shards_outside_the_duckdb_file_read_in_place(store):
    store.add_dataset("d", "test", texts("a a a a", "b b b b", "c c c c"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 2, 3)
    store.add_vectors(encoding_id, ids[[2, 0]], np.array([[7, 8, 9], [1, 2, 3]], np.float32))
    store.add_vectors(encoding_id, ids[[1]], np.array([[4, 5, 6]], np.float32))
    files = parquet_files(store)
    assert len(files) == 2 and all(name.startswith(f"encodings/encoding_id={encoding_id}/part-") for name in files)
    shard = pq.read_table(Path(store.arrays_location) / files[0])  # plain Parquet any engine reads, sorted by text
    assert shard.column_names == ["text_id", "vector"] and shard.column("text_id").to_pylist() == sorted(ids[[2, 0]])
    got_ids, vectors = store.vectors(encoding_id)
    assert got_ids.tolist() == ids.tolist() and vectors.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert store.encodings()["vectors"].tolist() == [3]
    with duckdb.connect(str(store.path)) as con:  # the file holds the catalog, not the vectors
        assert con.execute("SELECT sum(rows) FROM array_shards").fetchone()[0] == 3


def test_the_sandbox_reads_the_workspace_shards_and_no_other_file(store, tmp_path):
    activations(store, 1, [1.0])
    (shard,) = Path(store.arrays_location).rglob("*.parquet")
    outside = tmp_path / "elsewhere.parquet"
    pq.write_table(pq.read_table(shard), outside)
    with store._connect() as con:
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(shard)]).fetchone()[0] == 1
        for sql in (f"SELECT * FROM read_parquet('{outside}')", "SELECT * FROM read_csv('/etc/passwd')"):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")


def activations(store: Store, model_id: int, values: list[float]) -> None:
    n = len(values)
    store.set_feature_activations(model_id, np.arange(n), np.zeros(n), np.arange(n) % 2, np.array(values))


def test_replacing_activations_deletes_the_old_shards_and_a_failed_change_keeps_them(store, monkeypatch):
    activations(store, 5, [1.0, 2.0, 3.0])
    first = parquet_files(store)
    activations(store, 5, [4.0, 5.0])
    second = parquet_files(store)
    assert len(second) == 1 and second != first  # the old file went once the new one was registered
    assert store.feature_values(5, 0).tolist() == [4.0] and store.feature_values(5, 1).tolist() == [5.0]

    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Store, "add_shards", fail)
    with pytest.raises(RuntimeError):
        activations(store, 5, [6.0])
    assert parquet_files(store) == second and store.feature_values(5, 0).tolist() == [4.0]


def test_an_unregistered_file_is_never_read(store):
    activations(store, 3, [1.0, 2.0])
    (folder,) = {path.parent for path in Path(store.arrays_location).rglob("*.parquet")}
    pq.write_table(pq.read_table(next(folder.iterdir())), folder / "part-00001-crashed.parquet")  # never registered
    assert store.feature_values(3, 0).tolist() == [1.0]


def test_deleting_a_dataset_deletes_its_shards_and_a_copy_carries_its_own(store, tmp_path):
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 1, 2)
    store.add_vectors(encoding_id, ids, np.eye(2, dtype=np.float32))
    model_id = store.add_model("sae", "m", "d", "tiny", {})
    activations(store, model_id, [1.0, 2.0])
    copy = tmp_path / "copy" / "workspace.duckdb"
    copy.parent.mkdir()
    copy_workspace(store.path, copy)
    store.delete_dataset("d")
    assert parquet_files(store) == []
    copied = Store(copy, read_only=True)  # reads the copy's shards, not the deleted originals
    assert copied.vectors(encoding_id)[1].tolist() == [[1, 0], [0, 1]]
    assert copied.feature_values(model_id, 1).tolist() == [2.0]


def test_a_copy_under_another_name_finds_its_checkpoints(store, tmp_path):
    store.add_dataset("d", "test", texts("a a a a"))
    model_id = store.add_model("sae", "m", "d", "tiny", {})
    checkpoint = settings.models_dir(store.path) / str(model_id)
    checkpoint.mkdir(parents=True)
    (checkpoint / "cfg.json").write_text("{}")
    store.finish_model(model_id, str(checkpoint), {})
    copy = tmp_path / "renamed.duckdb"
    copy_workspace(store.path, copy)
    found = Store(copy, read_only=True).model(model_id)["checkpoint"]
    assert found == str(tmp_path / "renamed.models" / str(model_id))  # the copy's own, not the original's
