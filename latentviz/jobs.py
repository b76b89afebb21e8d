"""Long work off the app's server. A page queues a job (a kind from KINDS and its JSON params) in the
store; a worker process (`latentviz worker`, started by `latentviz serve` when a job is queued) takes
the queue oldest first, one job at a time by default, and writes each job's stage and progress,
which pages poll. Closing the browser or restarting the server leaves the worker running. A job
whose worker died is marked interrupted; training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from latentviz import pipeline, runs, settings, steps
from latentviz.progress import Progress
from latentviz.steps import WORKER
from latentviz.store import Store

IDLE_EXIT = 300.0  # seconds a worker started for the app waits on an empty queue before it exits


# -- what a job of each kind runs (features and evals import torch: here, in the worker, not in the pages) --


def _encode_and_map(store: Store, params: dict, progress: Progress) -> int:
    layer = params.get("layer") or None
    encoding_id = pipeline.encode(
        store, params["dataset"], backbone_name=params["backbone"], layer=layer, progress=progress
    )
    return pipeline.project(store, encoding_id, method=params["method"], progress=progress)


def _features(store: Store, params: dict, progress: Progress) -> None:
    from latentviz import features

    features.build(store, params["model"], progress=progress)


def _evaluate(store: Store, params: dict, progress: Progress):
    from latentviz import evals

    return evals.evaluate(store, steps.Evaluate(**params), progress=progress)


def _compare(store: Store, params: dict, progress: Progress):
    from latentviz import evals

    return evals.compare(store, steps.Compare(**params), progress=progress)


def _after_training(store: Store, kind: str, model_id: int, progress: Progress) -> None:
    if kind == "sae":  # so the Features page opens the new SAE's dashboards as soon as training ends
        _features(store, {"model": model_id}, progress)


def _training(family: runs.Family) -> dict[str, Callable]:
    def train(store: Store, params: dict, progress: Progress) -> None:
        model_id = family.fit.train(store, runs.from_dict({"kind": family.kind, **params["run"]}), progress)
        _after_training(store, family.kind, model_id, progress)

    def resume(store: Store, params: dict, progress: Progress) -> None:
        _after_training(store, family.kind, family.fit.resume(store, params["model"], progress), progress)

    return {family.train_job: train, family.resume_job: resume}


KINDS: dict[str, Callable[[Store, dict, Progress], object]] = {
    "default map": lambda store, params, progress: pipeline.build_default_map(store, progress=progress),
    "encode and map": _encode_and_map,
    "project": lambda store, params, progress: pipeline.project(
        store, params["encoding"], method=params["method"], progress=progress
    ),
    "features": _features,
    "evaluate": _evaluate,
    "compare": _compare,
    **{name: run for family in runs.FAMILIES.values() for name, run in _training(family).items()},
}


def training_params(run) -> dict:
    """A training job's params: the whole run spec (runs.to_dict)."""
    return {"run": runs.to_dict(run)}


# -- the queue ----------------------------------------------------------------------------------------------


def submit(store: Store, kind: str, params: dict) -> int:
    """Queue a job; the same job already queued or running is not queued twice (its id is
    returned). Under `latentviz serve` a worker process is started if none runs."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job_id = store.queue_job(kind, params)
    if os.environ.get(settings.WORKER_ENV) == "1":
        ensure_worker(store)
    return job_id


def cancel(store: Store, job_id: int) -> None:
    """Drop a queued job, or stop a running one at its next progress report (training checkpoints
    first, so it can be resumed)."""
    store.cancel_job(job_id)


def active(store: Store, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Queued and running jobs, oldest first (`rows`: store.active_jobs(), when read already); running
    rows whose worker has died are marked interrupted and left out."""
    jobs = store.active_jobs() if rows is None else rows
    dead = [int(job.id) for job in jobs.itertuples() if job.status == "running" and not _alive(int(job.id), job.pid)]
    if dead and not store.read_only:
        for job_id in dead:
            store.mark_interrupted(job_id, "the worker running it stopped; start it again to resume")
    return jobs[~jobs["id"].isin(dead)].reset_index(drop=True)


def running(store: Store) -> pd.DataFrame:
    jobs = active(store)
    return jobs[jobs["status"] == "running"]


def eta_seconds(job) -> float | None:
    """Seconds left in a running job's current stage, from the stage's own rate so far."""
    if job.status != "running" or any(pd.isna(v) or not v for v in (job.total, job.done, job.stage_seconds)):
        return None
    return float(job.stage_seconds) * (job.total - job.done) / job.done


def wait(store: Store, job_id: int, timeout: float = 600.0) -> dict:
    """Block until a job ends and return its row. With no worker process on this workspace, the
    queue is run here, in this thread, up to that job (tests and scripts need no worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active(store)  # a job whose worker died ends here, as interrupted
        job = store.job(job_id)
        if job["status"] not in ("queued", "running"):
            return job
        if job["status"] == "queued" and _worker_pid(store) is None:
            claimed = _claim(store)
            if claimed is not None:
                _run(store, claimed)
                continue
        time.sleep(0.1)
    return store.job(job_id)


# -- the worker -----------------------------------------------------------------------------------------------

_local: set[int] = set()  # ids of the jobs this process is running now
_local_lock = threading.Lock()


def work(store: Store, *, at_once: int = 1, idle_exit: float | None = None, poll: float = 0.5) -> None:
    """Run queued jobs, `at_once` at a time, until stopped, or until the queue has been empty for
    `idle_exit` seconds."""
    threads: list[threading.Thread] = []
    idle_since = time.monotonic()
    while True:
        threads = [thread for thread in threads if thread.is_alive()]
        while len(threads) < at_once and (job := _claim(store)) is not None:
            thread = threading.Thread(target=_run, args=(store, job), daemon=True, name=f"latentviz-job-{job['id']}")
            thread.start()
            threads.append(thread)
        if threads:
            idle_since = time.monotonic()
        elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
            return
        time.sleep(poll)


def _claim(store: Store) -> dict | None:
    """The oldest queued job, claimed by this process and known here as running before anyone can ask
    (`_alive` waits for the lock): else a page in this process could see it running, not find it here,
    and mark it interrupted."""
    with _local_lock:
        job = store.claim_job(os.getpid())
        if job is not None:
            _local.add(int(job["id"]))
    return job


class Stopped(Exception):
    """Raised inside a job's progress callback once someone asked the job to stop."""


def _run(store: Store, job: dict) -> None:
    job_id = int(job["id"])  # in _local since it was claimed
    last_write, last_message, last_cancel_check = 0.0, None, time.monotonic()

    def progress(done: int, total: int | None, message: str) -> None:
        nonlocal last_write, last_message, last_cancel_check
        now = time.monotonic()
        if now - last_cancel_check >= 0.5:
            last_cancel_check = now
            if store.cancel_asked(job_id):
                raise Stopped
        # A new stage is written at once (else "fitting UMAP" hides behind a full "encoded" bar); repeats
        # of the same stage at most every half second.
        if message != last_message or now - last_write >= 0.5 or (total is not None and done >= total):
            last_write, last_message = now, message
            store.update_job(job_id, done, total, message)

    try:
        KINDS[job["kind"]](store, _params(job), progress)
        store.finish_job(job_id, "done")
    except Stopped:
        store.finish_job(job_id, "interrupted", error="stopped; resume it to continue from the last checkpoint")
    except Exception as error:  # the job row is how the page learns of the failure
        traceback.print_exc()
        store.finish_job(job_id, "failed", error=str(error).splitlines()[0] if str(error) else type(error).__name__)
    finally:
        with _local_lock:
            _local.discard(job_id)


def _params(job: dict) -> dict:
    params = job["params"]
    return json.loads(params) if isinstance(params, str) else dict(params)


def _alive(job_id: int, pid) -> bool:
    if pd.isna(pid):
        return False
    if int(pid) == os.getpid():
        with _local_lock:
            return job_id in _local
    return _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker stays a zombie until its parent (the server that started it) reaps it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal check above is all there is


# -- one worker process per workspace -------------------------------------------------------------------------


def _pid_file(store: Store) -> Path:
    return store.path.with_name(store.path.name + ".worker")


def _worker_pid(store: Store) -> int | None:
    """The live worker process of this workspace, if there is one."""
    try:
        pid = int(_pid_file(store).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and _pid_alive(pid) else None


def ensure_worker(store: Store) -> None:
    """Start a worker process on this workspace unless one runs. It is a session of its own, so
    stopping the server leaves it (and its job) running; it exits once idle for IDLE_EXIT seconds."""
    if _worker_pid(store) is not None:
        return
    with open(store.path.with_name(store.path.name + ".worker.log"), "ab") as log:  # the child keeps its copy
        subprocess.Popen(
            [sys.executable, "-m", "latentviz", "worker", "--db", str(store.path), "--idle-exit", str(IDLE_EXIT)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, settings.WORKER_ENV: "0"},
        )
    # It writes its pid file first: wait for that, so the next submit does not start a second worker.
    deadline = time.monotonic() + 10
    while _worker_pid(store) is None and time.monotonic() < deadline:
        time.sleep(0.05)


def serve_worker(store: Store, *, at_once: int = WORKER.jobs, idle_exit: float | None = WORKER.idle_exit) -> bool:
    """`latentviz worker`: run this workspace's queue in this process. Returns False at once when
    another worker already runs on it."""
    if _worker_pid(store) is not None:
        return False
    pid_file = _pid_file(store)
    pid_file.write_text(str(os.getpid()))
    try:
        work(store, at_once=at_once, idle_exit=idle_exit)
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
    return True
