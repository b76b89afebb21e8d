"""Connections: read-only workspaces, processes and threads that share one workspace."""

import multiprocessing as mp
import time

import numpy as np
import pytest

from latentviz.store import Store, StoreError

from . import texts


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


def test_a_held_open_workspace_reads_from_one_open_database_in_any_thread_still_sandboxed(tmp_path):
    import threading

    import duckdb
    import pyarrow.parquet as pq

    path = tmp_path / "ws.duckdb"
    writer = Store(path)
    writer.add_dataset("d", "test", texts(*[f"sentence number {i}" for i in range(50)]))
    writer.set_feature_activations(1, np.arange(3), np.zeros(3), np.arange(3), np.array([1.0, 2.0, 3.0]))
    del writer
    with pytest.raises(ValueError, match="read-only"):
        Store(path, hold_open=True)
    held = Store(path, read_only=True, hold_open=True)
    with pytest.raises(duckdb.ConnectionException):  # the database is open here: no writer gets the file
        duckdb.connect(str(path))

    counts, errors = [], []

    def reader():
        for _ in range(30):
            try:
                counts.append((len(held.texts("d")), held.feature_values(1, 2).tolist()))  # the shards read in place
            except Exception as error:  # collected: the assertion below shows them all
                errors.append(repr(error))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and counts == [(50, [3.0])] * 120
    (shard,) = (tmp_path / "ws.arrays").rglob("*.parquet")
    outside = tmp_path / "elsewhere.parquet"
    pq.write_table(pq.read_table(shard), outside)
    with held._connect() as con:  # each call's cursor keeps the sandbox set on the held connection
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_parquet(?)", [str(outside)])
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")


def test_a_read_while_another_connection_of_the_process_is_open_starts_on_a_clean_connection(store):
    # A second connection to a file shares the first's database, already sandboxed: opening it then
    # left the sandbox check's result unfinished, and DuckDB 2 refuses a relation (con.sql) after that
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 1, 2)
    store.add_vectors(encoding_id, ids, np.eye(2, dtype=np.float32))
    projection_id = store.add_projection(encoding_id, "pca", {}, {}, ids, np.eye(2, dtype=np.float32))
    with store._connect():  # what a job's thread holds while a page reads
        points = store.projection_points(projection_id)
        got_ids, got = store.vectors(encoding_id)
    assert points["id"].tolist() == ids.tolist() and points["x"].tolist() == [1.0, 0.0]
    assert got_ids.tolist() == ids.tolist() and np.array_equal(got, np.eye(2))
