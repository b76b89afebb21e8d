import os
import threading

from latentviz import jobs


def test_a_job_runs_in_the_background_and_reports_progress(store):
    release = threading.Event()

    def step(progress):
        progress(3, 10, "working")
        release.wait(10)

    job_id = jobs.start(store, "demo", {"n": 1}, step)
    assert jobs.start(store, "demo", {"n": 1}, step) == job_id  # the same job is not started twice
    assert jobs.running(store)["id"].tolist() == [job_id]
    release.set()
    finished = jobs.wait(store, job_id)
    assert finished["status"] == "done" and finished["done"] == 3 and finished["message"] == "working"
    assert jobs.running(store).empty


def test_a_failing_job_keeps_its_first_error_line(store):
    def step(progress):
        raise ValueError("no such thing\nwith a long traceback-like tail")

    job = jobs.wait(store, jobs.start(store, "demo", {}, step))
    assert (job["status"], job["error"]) == ("failed", "no such thing")


def test_a_job_left_running_by_a_dead_process_is_marked_interrupted(store):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    job_id = store.start_job("encode", {}, pid=dead)
    assert jobs.running(store).empty
    assert store.job(job_id)["status"] == "interrupted"


def test_a_stopped_job_is_marked_interrupted_at_its_next_progress_report(store):
    started, reports = threading.Event(), []

    def step(progress):
        progress(1, 100, "first")
        started.set()
        for done in range(2, 100):
            threading.Event().wait(0.01)
            progress(done, 100, "working")
            reports.append(done)

    job_id = jobs.start(store, "long", {}, step)
    started.wait(10)
    jobs.stop(store, job_id)
    job = jobs.wait(store, job_id)
    assert job["status"] == "interrupted" and "resume" in job["error"] and len(reports) < 98


def test_a_new_stage_is_written_at_once_and_repeats_are_throttled(store):
    reported, release = threading.Event(), threading.Event()

    def step(progress):
        progress(5, 5, "encoded 5 texts")
        for done in range(1, 50):  # many reports of one stage in well under half a second
            progress(done, 100, "fitting UMAP")
        reported.set()
        release.wait(10)

    job_id = jobs.start(store, "demo", {}, step)
    assert reported.wait(10)
    row = store.job(job_id)
    assert row["message"] == "fitting UMAP" and row["done"] == 1  # the stage change at once, its repeats held back
    release.set()
    jobs.wait(store, job_id)
