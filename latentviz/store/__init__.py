"""The workspace: one DuckDB file, its large arrays in Parquet shards beside it, and `Store`, the one
way in. The package owns the schema, its migrations and every SQL statement; nothing else opens
DuckDB. Each module holds one domain (the shards, texts and encodings, models and curves, captures
and features, the job queue); `Store` joins them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from latentviz import settings
from latentviz.store.connection import StoreError
from latentviz.store.features import Features
from latentviz.store.jobs import Jobs
from latentviz.store.models import Models
from latentviz.store.schema import EXPORTED, MIGRATIONS, NOT_EXPORTED, SCHEMA_VERSION, Schema
from latentviz.store.texts import Texts

__all__ = ["EXPORTED", "MIGRATIONS", "NOT_EXPORTED", "SCHEMA_VERSION", "Store", "StoreError", "copy_workspace"]


def copy_workspace(source: str | Path, target: str | Path) -> None:
    """Copy a workspace that no process is writing: its DuckDB file with the shards and checkpoints
    beside it (the cache is rebuilt on demand). The copy's catalog names them relative to itself."""
    source, target = Path(source), Path(target)
    shutil.copyfile(source, target)
    for folder in (settings.arrays_dir, settings.models_dir):
        if folder(source).is_dir():
            shutil.copytree(folder(source), folder(target))


class Store(Schema, Texts, Models, Features, Jobs):
    """A latentviz workspace in one DuckDB file."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        lock_timeout: float = 60.0,
        arrays: str | None = None,
        hold_open: bool = False,
    ):
        """`arrays`: a URL where a new workspace keeps its Parquet shards (default $LATENTVIZ_ARRAYS; unset:
        the .arrays folder beside the file). `hold_open` (read-only only): keep the file open between
        calls, for a workspace no process writes while this one lives (a served bundle)."""
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        if read_only:
            if not self.path.exists():
                raise StoreError(
                    f"workspace {self.path} does not exist; create it first, e.g. `latentviz ingest bbc-news`"
                )
            self._check_version()
            if hold_open:
                self._hold_open()
        elif hold_open:
            raise ValueError("only a read-only workspace can be held open")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate()
            wanted = os.environ.get(settings.ARRAYS_ENV) if arrays is None else arrays
            if wanted:
                self._place_arrays(wanted)

    def info(self) -> dict:
        """Everything in the workspace, as plain JSON-ready values."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records", date_format="iso"))

        return {
            "workspace": str(self.path),
            "arrays": self.arrays_location,
            "schema_version": self.schema_version(),
            "datasets": records(self.datasets()),
            "encodings": records(self.encodings()),
            "projections": [dict(row, params=json.loads(row["params"])) for row in records(self.projections())],
            "models": [
                dict(row, config=json.loads(row["config"] or "{}"), metrics=json.loads(row["metrics"] or "{}"))
                for row in records(self.models())
            ],
        }
