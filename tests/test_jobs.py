"""The job queue: pages queue, a worker (a thread here, a process under `serve`) runs the queue."""

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import specs

from latentviz import jobs, runs, settings, train
from latentviz.store import Store, copy_workspace


@pytest.fixture
def kinds(monkeypatch):
    """Job kinds that run what a test gives them: kinds["name"] = fn(store, params, progress)."""
    table = dict(jobs.KINDS)
    monkeypatch.setattr(jobs, "KINDS", table)
    return table


def worker(store, at_once=1):
    """A worker thread on `store` that exits once the queue has stayed empty a moment."""
    thread = threading.Thread(
        target=jobs.work, args=(store,), kwargs={"at_once": at_once, "idle_exit": 1.0, "poll": 0.02}
    )
    thread.start()
    return thread


def test_a_queued_job_runs_in_the_worker_and_reports_progress(store, kinds):
    release = threading.Event()

    def demo(store, params, progress):
        progress(3, 10, "working")
        release.wait(10)

    kinds["demo"] = demo
    job_id = jobs.submit(store, "demo", {"n": 1})
    assert jobs.submit(store, "demo", {"n": 1}) == job_id  # the same job is not queued twice
    assert store.job(job_id)["status"] == "queued"
    thread = worker(store)
    deadline = time.monotonic() + 10
    while store.job(job_id)["message"] != "working" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert jobs.running(store)["id"].tolist() == [job_id]
    release.set()
    thread.join(10)
    finished = store.job(job_id)
    assert finished["status"] == "done" and finished["done"] == 3 and finished["message"] == "working"
    assert jobs.active(store).empty


def test_an_unknown_kind_is_refused(store):
    with pytest.raises(ValueError, match="unknown job kind"):
        jobs.submit(store, "no such job", {})


def test_jobs_run_one_at_a_time_in_queue_order_by_default(store, kinds):
    order, release = [], threading.Event()

    def demo(store, params, progress):
        order.append(("start", params["n"]))
        progress(0, 1, "working")
        release.wait(10)
        order.append(("end", params["n"]))

    kinds["demo"] = demo
    first, second = jobs.submit(store, "demo", {"n": 1}), jobs.submit(store, "demo", {"n": 2})
    thread = worker(store)
    deadline = time.monotonic() + 10
    while not order and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    active = jobs.active(store)
    assert active[["id", "status"]].values.tolist() == [[first, "running"], [second, "queued"]]
    release.set()
    thread.join(10)
    assert order == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]


def test_a_failing_job_keeps_its_first_error_line(store, kinds):
    def demo(store, params, progress):
        raise ValueError("no such thing\nwith a long traceback-like tail")

    kinds["demo"] = demo
    job = jobs.wait(store, jobs.submit(store, "demo", {}))  # no worker: wait runs the queue itself
    assert (job["status"], job["error"]) == ("failed", "no such thing")


def test_a_job_whose_worker_is_a_zombie_is_marked_interrupted(store):
    import subprocess

    child = subprocess.Popen(["true"])  # exits at once and stays a zombie: nobody waits for it yet
    time.sleep(0.5)
    job_id = store.queue_job("encode", {})
    store.claim_job(pid=child.pid)
    assert jobs.active(store).empty and store.job(job_id)["status"] == "interrupted"
    child.wait()


def test_a_job_left_running_by_a_dead_process_is_marked_interrupted(store):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    job_id = store.queue_job("encode", {})
    store.claim_job(pid=dead)
    assert jobs.active(store).empty
    assert store.job(job_id)["status"] == "interrupted"


def test_cancel_drops_a_queued_job_and_stops_a_running_one_at_its_next_report(store, kinds):
    started, reports = threading.Event(), []

    def demo(store, params, progress):
        progress(1, 100, "first")
        started.set()
        for done in range(2, 100):
            time.sleep(0.02)
            progress(done, 100, "working")
            reports.append(done)

    kinds["demo"] = demo
    running, queued = jobs.submit(store, "demo", {"n": 1}), jobs.submit(store, "demo", {"n": 2})
    jobs.cancel(store, queued)
    assert store.job(queued)["status"] == "cancelled"
    thread = worker(store)
    started.wait(10)
    jobs.cancel(store, running)
    thread.join(10)
    job = store.job(running)
    assert job["status"] == "interrupted" and "resume" in job["error"] and len(reports) < 98


def test_a_new_stage_is_written_at_once_and_repeats_are_throttled(store, kinds):
    reported, release = threading.Event(), threading.Event()

    def demo(store, params, progress):
        progress(5, 5, "encoded 5 texts")
        for done in range(1, 50):  # many reports of one stage in well under half a second
            progress(done, 100, "fitting UMAP")
        reported.set()
        release.wait(10)

    kinds["demo"] = demo
    job_id = jobs.submit(store, "demo", {})
    thread = worker(store)
    assert reported.wait(10)
    row = store.job(job_id)
    assert row["message"] == "fitting UMAP" and row["done"] == 1  # the stage change at once, its repeats held back
    release.set()
    thread.join(10)


def test_eta_comes_from_the_current_stages_rate():
    job = pd.Series({"status": "running", "done": 25, "total": 100, "stage_seconds": 10.0})
    assert jobs.eta_seconds(job) == pytest.approx(30.0)  # 25 in 10 s: 75 more in 30 s
    assert jobs.eta_seconds(pd.Series({**job, "done": 0})) is None  # no rate yet
    assert jobs.eta_seconds(pd.Series({**job, "status": "queued"})) is None


def test_kill_9_of_the_worker_leaves_the_store_consistent_and_the_run_resumable(mapped_workspace, tmp_path, tiny_bert):

    db = tmp_path / "kill.duckdb"
    copy_workspace(mapped_workspace, db)
    store = Store(db)
    run = specs.vq(
        "bbc-news",
        backbone=tiny_bert,
        model={"codebook_size": 8},
        training={"steps": 600, "batch_size": 32, "eval_every": 50, "checkpoint_every": 50},
    )
    job_id = jobs.submit(store, runs.FAMILIES["vq"].train_job, jobs.training_params(run))
    process = subprocess.Popen([sys.executable, "-m", "latentviz", "worker", "--db", str(db)])
    try:
        folder = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the run has written a checkpoint
            models = store.models()
            if not models.empty:
                folder = settings.models_dir(db) / str(int(models["id"].iloc[0]))
                if train.checkpoint_step(folder) >= 100:
                    break
            time.sleep(0.02)
        assert folder is not None and train.checkpoint_step(folder) >= 100
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert jobs.active(store).empty and store.job(job_id)["status"] == "interrupted"
    model_id = int(store.models()["id"].iloc[0])
    assert store.model(model_id)["checkpoint"] is None  # unfinished, so the pages offer Resume
    step = train.checkpoint_step(folder)
    assert step < 600, "the run finished before the kill: make it longer"
    assert store.training_metrics(model_id)["step"].max() >= step  # its curve up to the kill survived
    resume = jobs.submit(store, runs.FAMILIES["vq"].resume_job, {"model": model_id})  # as the page's Resume does
    resumed = jobs.wait(store, resume)
    assert resumed["status"] == "done" and store.model(model_id)["checkpoint"] is not None
    curve = store.training_metrics(model_id)
    assert curve["step"].max() == 600 and not curve.duplicated(["step", "split", "name"]).any()
