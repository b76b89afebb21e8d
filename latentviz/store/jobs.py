"""The job queue: pages add rows, the worker process claims and runs them (latentviz/jobs.py)."""

from __future__ import annotations

import json

import pandas as pd

from latentviz.store.connection import Connection, StoreError
from latentviz.store.models import LIVE_CURVE_POINTS

ACTIVE_JOBS = """SELECT *, epoch(current_timestamp - began) AS seconds,
                      epoch(current_timestamp - stage_began) AS stage_seconds
               FROM jobs WHERE status IN ('queued', 'running') ORDER BY id"""


class Jobs(Connection):
    # -- jobs ----------------------------------------------------------------------------------

    def queue_job(self, kind: str, params: dict) -> int:
        """Add a job to the queue; the same kind and params already queued or running is not added
        twice (its id is returned)."""
        with self._transaction() as con:
            for job_id, stored in con.execute(
                "SELECT id, params FROM jobs WHERE kind = ? AND status IN ('queued', 'running')", [kind]
            ).fetchall():
                if json.loads(stored) == params:
                    return job_id
            new_id = con.execute("SELECT nextval('job_ids')").fetchone()[0]
            con.execute(
                "INSERT INTO jobs (id, kind, params, status) VALUES (?, ?, ?, 'queued')",
                [new_id, kind, json.dumps(params)],
            )
        return new_id

    def claim_job(self, pid: int) -> dict | None:
        """The oldest queued job, now marked running in process `pid`; None when the queue is empty."""
        with self._transaction() as con:
            found = con.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if found is None:
                return None
            con.execute(
                """UPDATE jobs SET status = 'running', pid = ?, began = current_timestamp,
                   stage_began = current_timestamp, updated = current_timestamp WHERE id = ?""",
                [pid, found[0]],
            )
        return self.job(found[0])

    def update_job(self, job_id: int, done: int, total: int | None, message: str) -> None:
        with self._transaction() as con:
            con.execute(
                """UPDATE jobs SET done = ?, total = ?, updated = current_timestamp,
                   stage_began = CASE WHEN message IS DISTINCT FROM ? THEN current_timestamp ELSE stage_began END,
                   message = ? WHERE id = ?""",
                [done, total, message, message, job_id],
            )

    def cancel_job(self, job_id: int) -> None:
        """A queued job is cancelled at once; a running one is asked to stop at its next report."""
        with self._transaction() as con:
            con.execute(
                """UPDATE jobs SET status = 'cancelled', error = 'cancelled before it started',
                   updated = current_timestamp WHERE id = ? AND status = 'queued'""",
                [job_id],
            )
            con.execute("UPDATE jobs SET cancel = true WHERE id = ? AND status = 'running'", [job_id])

    def cancel_asked(self, job_id: int) -> bool:
        return bool(self._frame("SELECT cancel FROM jobs WHERE id = ?", [job_id])["cancel"].any())

    def finish_job(self, job_id: int, status: str, message: str | None = None, error: str | None = None) -> None:
        with self._transaction() as con:
            con.execute(
                """UPDATE jobs SET status = ?, message = coalesce(?, message), error = ?, updated = current_timestamp
                   WHERE id = ?""",
                [status, message, error, job_id],
            )

    def mark_interrupted(self, job_id: int, error: str) -> None:
        """Mark a job whose process died; a job that has meanwhile finished keeps its own status."""
        with self._transaction() as con:
            con.execute(
                "UPDATE jobs SET status = 'interrupted', error = ?, updated = current_timestamp WHERE id = ? AND "
                "status = 'running'",
                [error, job_id],
            )

    def jobs(self, limit: int = 20) -> pd.DataFrame:
        return self._frame("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", [limit])

    def active_jobs(self) -> pd.DataFrame:
        """Queued and running jobs, oldest first (the order the worker takes them), with the
        seconds since each began and since its stage began."""
        return self._frame(ACTIVE_JOBS)

    def watched(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """`active_jobs` and each unfinished model's count of held-out figures (LIVE_CURVE_POINTS) in one
        connection: opening the file costs more CPU (about 40 ms here) than both queries, and the queue's
        watcher asks every few seconds."""
        with self._connect() as con:
            return con.execute(ACTIVE_JOBS).df(), con.execute(LIVE_CURVE_POINTS).df()

    def job(self, job_id: int) -> dict:
        frame = self._frame("SELECT * FROM jobs WHERE id = ?", [job_id])
        if frame.empty:
            raise StoreError(f"no job with id {job_id}")
        return frame.iloc[0].to_dict()
