import multiprocessing as mp
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from latentviz.store import SCHEMA_VERSION, Store, StoreError


def texts(*items, label=None):
    return pd.DataFrame({"text": list(items), "label": label, "metadata": None})


def snapshot(store: Store) -> dict:
    return {
        "datasets": store.datasets().drop(columns="created").to_dict("records"),
        "texts": store.texts("d").to_dict("records") if store.has_dataset("d") else [],
    }


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


def test_texts_are_stored_verbatim_and_searched_literally(store):
    nasty = "Robert'); DROP TABLE texts; -- 100% of_it"
    store.add_dataset("d", "test", texts(nasty, "plain sentence", "another 50_50 one"))
    assert store.texts("d")["text"].tolist() == [nasty, "plain sentence", "another 50_50 one"]
    assert store.search_texts("d", "drop table")["text"].tolist() == [nasty]
    assert store.search_texts("d", "0%")["text"].tolist() == [nasty]  # % is not a wildcard
    assert store.search_texts("d", "_")["text"].tolist() == [nasty, "another 50_50 one"]
    assert store.search_texts("d", "xyz").empty


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


def test_info_is_plain_json(store):
    import json

    store.add_dataset("d", "test", texts("a a a a"))
    info = json.loads(json.dumps(store.info()))
    assert info["datasets"][0]["name"] == "d" and info["datasets"][0]["texts"] == 1


def _read_only_worker(path, result):
    try:
        ro = Store(path, read_only=True)
        count = len(ro.texts("d"))
        try:
            ro.add_dataset("x", "test", texts("y"))
            result.put(("wrote", count))
        except StoreError as error:
            result.put(("refused", count, str(error)))
    except Exception as error:  # reported to the parent, which fails the test
        result.put(("error", repr(error)))


def test_read_only_workspace(tmp_path):
    path = tmp_path / "ws.duckdb"
    Store(path).add_dataset("d", "test", texts("a a a a", "b b b b"))
    result = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=_read_only_worker, args=(str(path), result))
    process.start()
    process.join(60)
    outcome = result.get(timeout=5)
    assert outcome[0] == "refused" and outcome[1] == 2 and "read-only" in outcome[2]
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def _writer(path, seconds, result):
    try:
        store = Store(path)
        encoding_id = store.encoding_id("d", "tiny", 1, 4)
        ids = store.texts("d")["id"].to_numpy()
        writes, deadline = 0, time.monotonic() + seconds
        for text_id in ids:
            if time.monotonic() > deadline:
                break
            store.add_vectors(encoding_id, [text_id], np.ones((1, 4), np.float32))
            writes += 1
        result.put(("writer", writes))
    except Exception as error:
        result.put(("error", repr(error)))


def _reader(path, seconds, result):
    try:
        store = Store(path, read_only=True)
        reads, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            store.datasets()
            store.encodings()
            reads += 1
        result.put(("reader", reads))
    except Exception as error:
        result.put(("error", repr(error)))


def test_two_readers_and_a_writer_take_turns(tmp_path):
    path = tmp_path / "ws.duckdb"
    store = Store(path)
    store.add_dataset("d", "test", texts(*[f"sentence number {i}" for i in range(2000)]))
    ctx = mp.get_context("spawn")
    result = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(str(path), 4, result))]
    workers += [ctx.Process(target=_reader, args=(str(path), 4, result)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [result.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert all(kind != "error" for kind, _ in outcomes), outcomes
    assert all(count > 0 for _, count in outcomes), outcomes
    assert len(store.encoded_text_ids(store.encoding_id("d", "tiny", 1, 4))) == dict(outcomes)["writer"]


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


def test_jobs_queue_in_order_record_progress_and_an_interruption_never_overwrites_an_ending(store):
    job_id = store.queue_job("encode", {"dataset": "d"})
    later = store.queue_job("encode", {"dataset": "e"})
    assert store.queue_job("encode", {"dataset": "d"}) == job_id  # queued already: not twice
    assert store.claim_job(pid=123)["id"] == job_id  # oldest first
    active = store.active_jobs()
    assert active[["id", "status"]].values.tolist() == [[job_id, "running"], [later, "queued"]]
    assert active["pid"].iloc[0] == 123 and pd.isna(active["pid"].iloc[1])
    store.update_job(job_id, 5, 10, "halfway")
    job = store.job(job_id)
    assert (job["status"], job["done"], job["total"], job["message"]) == ("running", 5, 10, "halfway")
    store.finish_job(job_id, "failed", error="boom")
    store.mark_interrupted(job_id, "process died")
    assert (store.job(job_id)["status"], store.job(job_id)["error"]) == ("failed", "boom")
    other = store.claim_job(pid=123)["id"]
    assert store.claim_job(pid=123) is None  # the queue is empty
    store.mark_interrupted(other, "process died")
    assert store.job(other)["status"] == "interrupted"


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
    assert store.schema_version() == SCHEMA_VERSION == 7
    assert store.captures().empty and not store.has_feature_activations(1) and not store.has_feature_dashboards(1)
    assert store.datasets()["name"].tolist() == ["old"]
    assert store.models().empty and store.add_model("vq", "m", "old", "minilm", {}) == 1


def test_threads_of_one_process_share_the_workspace(store):
    import threading

    errors = []

    def writer():
        for step in range(150):
            try:
                store.add_training_metrics(1, step, "held_out", {"loss": 1.0})
            except Exception as error:  # collected: the assertion below shows them all
                errors.append(repr(error))

    def reader():
        for _ in range(150):
            try:
                store.jobs()
            except Exception as error:
                errors.append(repr(error))

    threads = [threading.Thread(target=writer), threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.training_metrics(1)) == 300
