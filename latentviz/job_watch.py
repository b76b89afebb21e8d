"""The job queue and a live run's curves, watched without rerunning the page.

A page that polled the queue reran its script every 2 s and the browser redrew the page each time:
with the training run on the same two cores, one watching page slowed it by 13% and three by a third
(bench/watch.py; what it measures since: docs/benchmarks.md). Now one thread per server writes the
queue's state to a small file beside this component's page (component_files) every 2 s, while jobs
wait or run, with one connection however many pages watch, and with it the newest live run's
held-out curves of each kind (read again only when the run has recorded new figures, at most every
CURVES_EVERY_S). Each page's component (job_watch.html) fetches that file and draws the progress
bars and the live curves itself; it asks Streamlit for a rerun only when what the page shows must
change otherwise: a job started, ended or was cancelled, or another run went live.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import threading
import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from latentviz import component_files, estimates, jobs, numbers, runs
from latentviz.store import Store

FOLDER = component_files.folder("job_watch.html")
SNAPSHOT_EVERY_S = 2.0  # how often the server writes the queue's state (about 40 ms of CPU), and a page fetches it
IDLE_AFTER_S = 30.0  # the writer stops once nothing has waited or run this long
CURVES_EVERY_S = 5.0  # a live run's curves are read again at most this often: they change only at evaluations


def ordinal(n: int) -> str:
    if n == 1:
        return "next"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def progress_lines(active: pd.DataFrame) -> list[dict]:
    """What the queue shows for each job: {id, kind, status, text, share}."""
    lines, running = [], int((active["status"] == "running").sum())
    for position, job in enumerate(active.itertuples()):
        if job.status == "queued":
            text, share = f"queued, {ordinal(position - running + 1)} in line", 0.0
        else:
            total = job.total if pd.notna(job.total) and job.total else None
            message = job.message if isinstance(job.message, str) and job.message else "starting"  # NaN at first
            count = f" — {numbers.count(job.done)} / {numbers.count(int(total))}" if total else ""
            eta = jobs.eta_seconds(job)
            remaining = f" · {estimates.about(eta)} left" if eta is not None and eta >= 1 else ""
            text, share = f"{message}{count}{remaining}", min(1.0, job.done / total) if total else 0.0
        lines.append({"id": int(job.id), "kind": job.kind, "status": job.status, "text": text, "share": share})
    return lines


def series(curves: pd.DataFrame) -> list[dict]:
    """A run's curves (step, metric, value: fit.<kind>.curves) as the component draws them: one
    {metric, steps, values} per metric, in the order the family names them."""
    return [
        {"metric": metric, "steps": rows["step"].astype(int).tolist(), "values": rows["value"].astype(float).tolist()}
        for metric, rows in curves.groupby("metric", sort=False)
    ]


_read_curves: dict[tuple[str, int], tuple[int, float, list]] = {}  # (workspace, model): (points, when, series)


def _live_series(workspace: Store, model_id: int, kind: str, points: int) -> list[dict]:
    """A live run's curves, read again only when it has recorded new figures, at most every CURVES_EVERY_S
    (a read is a few queries; the snapshot is written every SNAPSHOT_EVERY_S)."""
    key = (str(workspace.path), model_id)
    read = _read_curves.get(key)
    if read is None or (read[0] != points and time.monotonic() - read[1] >= CURVES_EVERY_S):
        read = _read_curves[key] = (
            points,
            time.monotonic(),
            series(runs.FAMILIES[kind].fit.curves(workspace, model_id)),
        )
    return read[2]


def snapshot(workspace: Store) -> dict:
    """The queue's state as the pages' components read it: its jobs' lines, and for each kind its newest
    unfinished run (training now, or stopped), with its curves while a job of that kind runs."""
    rows, live = workspace.watched()
    active = jobs.active(workspace, rows)
    running = set(active.loc[active["status"] == "running", "kind"])
    curves = []
    for run in live.groupby("kind", sort=False).tail(1).itertuples():  # ordered by id: the newest of each kind
        model, kind, points = int(run.model_id), run.kind, int(run.points)
        watched = points and any(job in running for job in runs.FAMILIES[kind].jobs)
        shown = _live_series(workspace, model, kind, points) if watched else []
        curves.append({"model": model, "kind": kind, "points": points, "series": shown})
    return {"jobs": progress_lines(active), "curves": curves}


class _Writer(threading.Thread):
    """Writes a workspace's snapshot every SNAPSHOT_EVERY_S while jobs wait or run, then stops."""

    def __init__(self, workspace: Store, path):
        super().__init__(daemon=True, name=f"job-watch {workspace.path.name}")
        self.workspace, self.path = workspace, path

    def run(self) -> None:
        quiet_since = None
        while not _stopping.is_set():
            state = snapshot(self.workspace)
            component_files.write(self.path, json.dumps(state).encode())
            if state["jobs"]:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > IDLE_AFTER_S:
                return
            _stopping.wait(SNAPSHOT_EVERY_S)


_writers: dict[str, _Writer] = {}
_writers_lock = threading.Lock()
_stopping = threading.Event()


def _stop_writers() -> None:
    """Let the writers finish their query before the process ends (a thread stopped inside DuckDB at
    exit aborts the process), and before their folder is removed."""
    _stopping.set()
    for writer in list(_writers.values()):
        writer.join(5)


def state_file(workspace: Store) -> str:
    """The workspace's snapshot file, as the component fetches it; its writer is started when it is not
    running, and a first snapshot is written now, so a page never fetches a missing or stale file."""
    name = hashlib.sha256(str(workspace.path).encode()).hexdigest()[:16]
    path = component_files.own_folder(FOLDER) / f"{name}.json"
    with _writers_lock:
        writer = _writers.get(str(workspace.path))
        if writer is None or not writer.is_alive():
            if not _writers:  # run at exit before the folder's removal, registered before this
                atexit.register(_stop_writers)
            component_files.write(path, json.dumps(snapshot(workspace)).encode())
            writer = _writers[str(workspace.path)] = _Writer(workspace, path)
            writer.start()
    return component_files.relative(FOLDER, path)


@functools.cache
def _component():
    """Declared at the first page run that draws it: declared while the server starts (latentviz.server
    imports this module early), the server's runtime would not know it, and its frame would be a 404."""
    return components.declare_component("job_watch", path=str(FOLDER))


@dataclass
class QueueEvents:
    cancel: int | None  # the job whose Cancel was pressed since the last run


def queue_events(key: str) -> QueueEvents:
    """What the visitor did on the queue drawn under `key`, read before drawing it again."""
    value = st.session_state.get(key) or {}
    seq, seen = value.get("seq"), st.session_state.get(f"{key}_seen")
    st.session_state[f"{key}_seen"] = seq
    return QueueEvents(int(value["cancel"]) if value.get("cancel") is not None and seq != seen else None)


def queue(workspace: Store, active: pd.DataFrame, *, can_cancel: bool, key: str) -> None:
    """The queue's progress bars, updated in the browser every SNAPSHOT_EVERY_S; the page reruns when a job
    starts or ends (the page draws something else then) or Cancel is pressed."""
    _component()(
        mode="queue",
        file=state_file(workspace),
        every_ms=int(SNAPSHOT_EVERY_S * 1000),
        jobs=progress_lines(active),
        can_cancel=can_cancel,
        key=key,
        default=None,
    )


def curves(workspace: Store, kind: str, model_id: int | None, shown: pd.DataFrame, *, empty: str, key: str) -> None:
    """A live run's held-out curves (`shown`: fit.<kind>.curves as this run read them, or `empty` said
    while there are none), redrawn in the browser as the run records more; asks for a rerun of the
    fragment it is drawn in only when the newest unfinished model of `kind` is another than `model_id`."""
    _component()(
        mode="curves",
        file=state_file(workspace),
        every_ms=int(SNAPSHOT_EVERY_S * 1000),
        kind=kind,
        model=model_id,
        series=series(shown),
        empty=empty,
        key=key,
        default=None,
    )
