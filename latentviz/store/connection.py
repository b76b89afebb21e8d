"""The workspace's connection. Connections are short-lived: each call opens the file, does its work
in one transaction and closes it again, so a CLI writer, the app and a read-only demo can take turns
on one file (DuckDB lets one process write or many read, never both at once). A caller that finds
the file locked waits and retries for up to `lock_timeout` seconds. A workspace nothing writes (a
served bundle) can be held open instead (`Connection._hold_open`).
"""

from __future__ import annotations

import io
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from latentviz.errors import LatentvizError
from latentviz.store.locations import canonical, filesystem_of

# DuckDB's Python client shares one database instance between a process's connections to a file;
# opening or closing one while another thread does the same can leave a new connection without
# its Python scan functions ("python_arrow_scan does not exist"). Opening and closing take turns.
_OPEN_CLOSE = threading.Lock()


class StoreError(LatentvizError):
    """A request the workspace refuses; the message says what to do instead."""


def is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower()


def _sandbox(con, arrays: str) -> None:
    """Nothing we run reads other files than the workspace's own Parquet shards: allow their folder (on
    object storage: through its fsspec filesystem, registered here), turn the rest off, then lock it.
    Connections to one file share settings and filesystems, so only the first sets them."""
    if con.execute("SELECT current_setting('lock_configuration')").fetchone()[0]:
        return
    remote = filesystem_of(arrays)
    if remote is not None and remote.protocol[0] not in con.list_filesystems():
        con.register_filesystem(remote)
    con.execute("SET allowed_directories = $folders", {"folders": [f"{canonical(arrays)}/"]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def insert(con, rows: pa.Table, sql: str, params: list | dict | None = None) -> None:
    """Run `sql`, which reads `rows` as the table `incoming`, and let go of `rows` after, whatever happens."""
    con.complete()  # DuckDB 2 refuses register() while an earlier statement's result is open
    con.register("incoming", rows)
    try:
        con.execute(sql, params or [])
    finally:
        con.complete()
        con.unregister("incoming")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)  # object arrays would need pickle to load: refuse them
    return buffer.getvalue()


def npz_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


ARRAYS_SETTING = "arrays"  # workspace_settings: the URL of a workspace's shards folder on object storage


def has_table(con, name: str) -> bool:
    """Whether the workspace has this table yet (an older schema may not)."""
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(tables, [name]).fetchone()[0])


def recorded_arrays(con) -> str | None:
    """The shards folder a workspace was created with, when not beside its file (store/arrays.py)."""
    if not has_table(con, "workspace_settings"):  # before schema v12
        return None
    found = con.execute("SELECT value FROM workspace_settings WHERE name = ?", [ARRAYS_SETTING]).fetchone()
    return found[0] if found else None


class Connection:
    """One DuckDB file, opened for each call: the connection, transactions and small reads every
    domain of the store shares. `path`, `read_only` and `lock_timeout` are set by `Store`."""

    path: Path
    read_only: bool
    lock_timeout: float
    _held = None  # a connection kept open by _hold_open

    def _hold_open(self) -> None:
        """Keeps one read-only connection open for the process's life; every call then takes a cursor of
        it (0.3 ms here) instead of opening the file (18 ms, and as long again to close it: most of a
        page run's time with twenty visitors). Only for a workspace nothing writes: while it is held,
        no other process can open the file to write."""
        with _OPEN_CLOSE:
            held = duckdb.connect(str(self.path), read_only=True)
            self._arrays_location = recorded_arrays(held)
            _sandbox(held, self.arrays_location)  # settings are the database's: its cursors share them
        self._held = held

    @contextmanager
    def _connect(self):
        con = self._open()
        try:
            yield con
        finally:
            with _OPEN_CLOSE:
                con.close()

    def _open(self):
        if self._held is not None:
            with _OPEN_CLOSE:
                return self._held.cursor()
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                with _OPEN_CLOSE:
                    con = duckdb.connect(str(self.path), read_only=self.read_only)
                    if self._arrays_location is None:
                        self._arrays_location = recorded_arrays(con)
                    _sandbox(con, self.arrays_location)
                    con.complete()  # the checks' one-row results stay open in DuckDB 2, refusing con.sql
                return con
            except duckdb.IOException as error:
                if not is_lock_error(error) or time.monotonic() > deadline:
                    raise StoreError(
                        f"workspace {self.path} is busy (locked by another process); try again shortly"
                    ) from error
                time.sleep(0.05)

    @contextmanager
    def _transaction(self):
        if self.read_only:
            raise StoreError(f"workspace {self.path} is open read-only; it can be browsed, not changed")
        with self._connect() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def _frame(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        with self._connect() as con:
            return con.execute(sql, params or []).df()

    def _arrow_frame(self, sql: str, params: list) -> pd.DataFrame:
        """`_frame` through Arrow, for many texts: they reach pandas as Arrow strings without a Python
        object each (3-7 times faster at 200,000 texts and more). Its columns differ only where they
        are neither numbers nor text (a JSON NULL is NaN here), so it is kept to such queries."""
        with self._connect() as con:
            return con.sql(sql, params=params).to_arrow_table().to_pandas()

    def _has_rows(self, table: str, model_id: int) -> bool:
        with self._connect() as con:
            return bool(con.execute(f"SELECT count(*) > 0 FROM {table} WHERE model_id = ?", [model_id]).fetchone()[0])
