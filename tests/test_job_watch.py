"""The job queue as pages watch it: one file the server writes every 2 s, whatever the number of
pages, with the live runs' curves, and a component that asks the page to rerun only when what it
shows must change."""

import json
import os
import time

from latentviz import job_watch, jobs
from latentviz.store import Store


def state(store: Store) -> dict:
    return json.loads((job_watch.FOLDER / job_watch.state_file(store)).read_text())


def test_one_writer_per_workspace_writes_the_queue_and_stops_when_nothing_waits(tmp_path, monkeypatch):
    monkeypatch.setattr(job_watch, "SNAPSHOT_EVERY_S", 0.05)
    monkeypatch.setattr(job_watch, "IDLE_AFTER_S", 0.3)
    monkeypatch.setattr(job_watch, "CURVES_EVERY_S", 0.05)
    store = Store(tmp_path / "watched.duckdb")
    first = jobs.submit(store, "default map", {"dataset": "bbc-news"})
    second = jobs.submit(store, "encode and map", {"dataset": "other"})
    assert [(j["id"], j["text"]) for j in state(store)["jobs"]] == [
        (first, "queued, next in line"),
        (second, "queued, 2nd in line"),
    ]
    assert state(store)["curves"] == []
    writer = job_watch._writers[str(store.path)]
    job_watch.state_file(store)  # a second page: the same writer, not a second one
    assert job_watch._writers[str(store.path)] is writer and writer.is_alive()

    monkeypatch.setattr(jobs, "_alive", lambda job_id, pid: True)  # claimed by this process, not a worker
    claimed = store.claim_job(os.getpid())  # the first one runs, half done
    store.update_job(claimed["id"], 50, 100, "encoding with minilm")
    deadline = time.monotonic() + 10
    while state(store)["jobs"][0]["share"] != 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    running = state(store)["jobs"][0]
    assert running["status"] == "running" and running["text"].startswith("encoding with minilm — 50 / 100")
    model = store.add_model("sae", "live", "bbc-news", "smollm2", {})
    store.add_training_metrics(model, 10, "held_out", {"fvu": 0.5, "l0": 30.0})
    deadline = time.monotonic() + 10
    while [c["points"] for c in state(store)["curves"]] != [2] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(store)["curves"] == [{"model": model, "kind": "sae", "points": 2, "series": []}]  # no SAE job runs

    store.finish_job(claimed["id"], "done")
    jobs.cancel(store, second)
    training = jobs.submit(store, "train sae", {})
    store.claim_job(os.getpid())  # the SAE's training runs: its curves travel with the queue, named for people
    deadline = time.monotonic() + 10
    while not state(store)["curves"][0]["series"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(store)["curves"][0]["series"] == [
        {"metric": "FVU", "steps": [10], "values": [0.5]},
        {"metric": "L0", "steps": [10], "values": [30.0]},
    ]
    store.add_training_metrics(model, 20, "held_out", {"fvu": 0.25, "l0": 31.0})  # read again: it has new figures
    deadline = time.monotonic() + 10
    while len(state(store)["curves"][0]["series"][0]["steps"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(store)["curves"][0]["series"][0] == {"metric": "FVU", "steps": [10, 20], "values": [0.5, 0.25]}

    store.finish_job(training, "done")
    writer.join(10)  # nothing waits or runs: the writer leaves, with the empty queue written
    assert not writer.is_alive() and state(store)["jobs"] == []
