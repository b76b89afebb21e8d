"""The job queue in the store (the worker that runs it: tests/test_jobs.py)."""

import pandas as pd


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
