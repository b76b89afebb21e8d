"""Long work off the Streamlit script thread: a daemon thread runs a pipeline step and writes its
progress into the store's jobs table, which pages poll. A job whose process died is reported as
interrupted; running the step again resumes it.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections.abc import Callable

import pandas as pd

from latentviz.store import Store

_threads: dict[tuple[str, int], threading.Thread] = {}
_stops: dict[tuple[str, int], threading.Event] = {}
_lock = threading.RLock()  # guards _threads: a job row and its thread appear together


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(store: Store, kind: str, params: dict, step: Callable[[Callable], object]) -> int:
    """Run `step(progress)` in a background thread; returns the job id. An identical job that is
    still running in this process is not started twice: its id is returned instead."""
    with _lock:
        for job in running(store).itertuples():
            if job.kind == kind and json.loads(job.params) == params:
                return int(job.id)
        job_id = store.start_job(kind, params, os.getpid())
        key = (str(store.path), job_id)
        _stops[key] = threading.Event()
        thread = threading.Thread(
            target=_run, args=(store, job_id, step, _stops[key]), daemon=True, name=f"latentviz-job-{job_id}"
        )
        _threads[key] = thread
        thread.start()
    return job_id


class Stopped(Exception):
    """Raised inside a job's progress callback once someone asked the job to stop."""


def stop(store: Store, job_id: int) -> None:
    """Ask a running job of this process to stop at its next progress report (training runs
    checkpoint first, so they can be resumed)."""
    event = _stops.get((str(store.path), job_id))
    if event is not None:
        event.set()


def _run(store: Store, job_id: int, step: Callable, stop_asked: threading.Event) -> None:
    last_write, last_message = 0.0, None

    def progress(done: int, total: int | None, message: str) -> None:
        nonlocal last_write, last_message
        if stop_asked.is_set():
            raise Stopped
        now = time.monotonic()
        # A new stage is written at once (else "fitting UMAP" hides behind a full "encoded" bar); repeats
        # of the same stage at most every half second.
        if message != last_message or now - last_write >= 0.5 or (total is not None and done >= total):
            last_write, last_message = now, message
            store.update_job(job_id, done, total, message)

    try:
        step(progress)
        store.finish_job(job_id, "done")
    except Stopped:
        store.finish_job(job_id, "interrupted", error="stopped; resume it to continue from the last checkpoint")
    except Exception as error:  # the job row is how the page learns of the failure
        traceback.print_exc()
        store.finish_job(job_id, "failed", error=str(error).splitlines()[0] if str(error) else type(error).__name__)


def running(store: Store) -> pd.DataFrame:
    """Jobs still running; rows left 'running' by a process that has died are marked interrupted."""
    with _lock:
        jobs = store.jobs(limit=50)
        jobs = jobs[jobs["status"] == "running"]
        alive = []
        for job in jobs.itertuples():
            thread = _threads.get((str(store.path), int(job.id)))
            if job.pid == os.getpid():
                is_alive = thread is not None and thread.is_alive()
            else:
                is_alive = _pid_alive(int(job.pid))
            if is_alive:
                alive.append(job.Index)
            elif not store.read_only:
                store.mark_interrupted(int(job.id), "the process running it stopped; start it again to resume")
        return jobs.loc[alive]


def wait(store: Store, job_id: int, timeout: float = 600.0) -> dict:
    """Block until a job of this process ends (for tests and the CLI)."""
    thread = _threads.get((str(store.path), job_id))
    if thread is not None:
        thread.join(timeout)
    return store.job(job_id)
