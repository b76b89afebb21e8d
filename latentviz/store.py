"""The workspace: one DuckDB file. This module owns its schema, its migrations and every SQL
statement; nothing else opens DuckDB.

Connections are short-lived: each call opens the file, does its work in one transaction and
closes it again, so a CLI writer, the app and a read-only demo can take turns on one file
(DuckDB lets one process write or many read, never both at once). A caller that finds the file
locked waits and retries for up to `lock_timeout` seconds.
"""

from __future__ import annotations

import io
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from latentviz.errors import LatentvizError

# DuckDB's Python client shares one database instance between a process's connections to a file;
# opening or closing one while another thread does the same can leave a new connection without
# its Python scan functions ("python_arrow_scan does not exist"). Opening and closing take turns.
_OPEN_CLOSE = threading.Lock()


class StoreError(LatentvizError):
    """A request the workspace refuses; the message says what to do instead."""


# Each entry migrates the schema from version i to i + 1. Never edit a released entry: append.
MIGRATIONS: list[list[str]] = [
    [
        # Ids come from sequences, never max(id) + 1, so an id is never reused after a delete
        # (the app caches maps by projection id).
        "CREATE SEQUENCE text_ids START 1",
        "CREATE SEQUENCE encoding_ids START 1",
        "CREATE SEQUENCE projection_ids START 1",
        "CREATE SEQUENCE job_ids START 1",
        """CREATE TABLE datasets (
            name VARCHAR PRIMARY KEY,
            source VARCHAR NOT NULL,
            params JSON,
            created TIMESTAMP DEFAULT current_timestamp)""",
        """CREATE TABLE texts (
            id BIGINT PRIMARY KEY,
            dataset VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            label VARCHAR,
            metadata JSON)""",
        # One row per (dataset, backbone, layer): a set of sentence vectors, filled batch by batch.
        """CREATE TABLE encodings (
            id INTEGER PRIMARY KEY,
            dataset VARCHAR NOT NULL,
            backbone VARCHAR NOT NULL,
            layer INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            params JSON,
            complete BOOLEAN NOT NULL DEFAULT false,
            created TIMESTAMP DEFAULT current_timestamp,
            UNIQUE (dataset, backbone, layer))""",
        """CREATE TABLE encoding_vectors (
            encoding_id INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            vector FLOAT[] NOT NULL,
            PRIMARY KEY (encoding_id, text_id))""",
        """CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            kind VARCHAR NOT NULL,
            name VARCHAR,
            dataset VARCHAR,
            backbone VARCHAR,
            config JSON,
            metrics JSON,
            checkpoint VARCHAR,
            created TIMESTAMP DEFAULT current_timestamp)""",
        # state: the fitted reducer's arrays as an .npz blob (read back with allow_pickle=False).
        """CREATE TABLE projections (
            id INTEGER PRIMARY KEY,
            encoding_id INTEGER NOT NULL,
            method VARCHAR NOT NULL,
            params JSON NOT NULL,
            state BLOB,
            created TIMESTAMP DEFAULT current_timestamp)""",
        """CREATE TABLE projection_points (
            projection_id INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            x FLOAT NOT NULL,
            y FLOAT NOT NULL,
            PRIMARY KEY (projection_id, text_id))""",
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind VARCHAR NOT NULL,
            params JSON,
            status VARCHAR NOT NULL,
            done BIGINT DEFAULT 0,
            total BIGINT,
            message VARCHAR,
            error VARCHAR,
            pid INTEGER,
            started TIMESTAMP DEFAULT current_timestamp,
            updated TIMESTAMP DEFAULT current_timestamp)""",
    ],
    [
        "CREATE SEQUENCE model_ids START 1",
        # Curves: one row per (model, step, split, metric).
        """CREATE TABLE training_metrics (
            model_id INTEGER NOT NULL,
            step INTEGER NOT NULL,
            split VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            value DOUBLE)""",
        # Discrete codes of every text under a model: `slot` is the code position (group), `stage` the residual stage.
        """CREATE TABLE text_codes (
            model_id INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            slot INTEGER NOT NULL,
            stage INTEGER NOT NULL,
            code BIGINT NOT NULL,
            PRIMARY KEY (model_id, text_id, slot, stage))""",
    ],
    [
        # Token-level models: the slot is the token's position and this is the token itself.
        "ALTER TABLE text_codes ADD COLUMN token VARCHAR",
    ],
    [
        # Captured LM activations (for SAEs): the vectors live in safetensors shards beside the
        # workspace; the store knows each capture, its shards, and every kept token.
        "CREATE SEQUENCE capture_ids START 1",
        """CREATE TABLE captures (
            id INTEGER PRIMARY KEY,
            dataset VARCHAR NOT NULL,
            backbone VARCHAR NOT NULL,
            layer INTEGER NOT NULL,
            params VARCHAR,
            complete BOOLEAN DEFAULT false,
            created TIMESTAMP DEFAULT current_timestamp)""",
        """CREATE TABLE capture_shards (
            capture_id INTEGER NOT NULL,
            shard INTEGER NOT NULL,
            path VARCHAR NOT NULL,
            tokens BIGINT NOT NULL,
            PRIMARY KEY (capture_id, shard))""",
        """CREATE TABLE capture_tokens (
            capture_id INTEGER NOT NULL,
            shard INTEGER NOT NULL,
            row INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            token VARCHAR,
            PRIMARY KEY (capture_id, shard, row))""",
        # An SAE's non-zero latents on every captured token: the raw material of feature dashboards.
        """CREATE TABLE feature_activations (
            model_id INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            value REAL NOT NULL)""",
    ],
    [
        # Tokens a capture left out (attention sinks): never trained on, but shown in their texts.
        """CREATE TABLE capture_masked (
            capture_id INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            token VARCHAR)""",
    ],
    [
        # Every feature's dashboard, built in bulk by `latentviz features`: opening one is a lookup.
        """CREATE TABLE feature_summaries (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            fires BIGINT NOT NULL,
            density DOUBLE NOT NULL,
            mean DOUBLE,
            max DOUBLE,
            median DOUBLE,
            q90 DOUBLE,
            q99 DOUBLE,
            label VARCHAR NOT NULL,
            label_confidence DOUBLE NOT NULL,
            histogram INTEGER[],
            PRIMARY KEY (model_id, feature))""",
        # promotes / suppresses (other = token id), neighbours (feature, cosine), cooccurs (feature, tokens)
        """CREATE TABLE feature_links (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            rank INTEGER NOT NULL,
            other BIGINT NOT NULL,
            token VARCHAR,
            score DOUBLE NOT NULL)""",
        """CREATE TABLE feature_examples (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            rank INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            value REAL NOT NULL)""",
        # the feature's activations on every token of its example texts: each example's shading
        """CREATE TABLE feature_example_values (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            text_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            value REAL NOT NULL)""",
    ],
    [
        # A queue: pages add 'queued' rows, the worker process claims them (jobs.py). `cancel` asks a
        # running job to stop; `began` and `stage_began` give the rate an ETA is worked out from.
        "ALTER TABLE jobs ADD COLUMN cancel BOOLEAN DEFAULT false",
        "ALTER TABLE jobs ADD COLUMN began TIMESTAMP",
        "ALTER TABLE jobs ADD COLUMN stage_began TIMESTAMP",
    ],
]
# What `copy_into` keeps of each table, given $datasets and $models; the tables left out (the job queue,
# capture shards: activations on disk that only training reads) start empty. tests/test_bundle.py checks
# that every table is named here or in NOT_EXPORTED.
_OF_DATASETS = "list_contains($datasets, dataset)"
_OF_MODELS = "list_contains($models, model_id)"
_OF_ENCODINGS = f"encoding_id IN (SELECT id FROM source.encodings WHERE {_OF_DATASETS})"
_OF_CAPTURES = f"capture_id IN (SELECT id FROM source.captures WHERE {_OF_DATASETS})"
EXPORTED = {
    "datasets": "list_contains($datasets, name)",
    "texts": _OF_DATASETS,
    "encodings": _OF_DATASETS,
    "encoding_vectors": _OF_ENCODINGS,
    "projections": _OF_ENCODINGS,
    "projection_points": f"projection_id IN (SELECT id FROM source.projections WHERE {_OF_ENCODINGS})",
    "models": "list_contains($models, id)",
    "training_metrics": _OF_MODELS,
    "text_codes": _OF_MODELS,
    "captures": _OF_DATASETS,
    "capture_tokens": _OF_CAPTURES,
    "capture_masked": _OF_CAPTURES,
    "feature_activations": _OF_MODELS,
    "feature_summaries": _OF_MODELS,
    "feature_links": _OF_MODELS,
    "feature_examples": _OF_MODELS,
    "feature_example_values": _OF_MODELS,
}
NOT_EXPORTED = ("jobs", "capture_shards", "schema_version")
SEQUENCES = {
    "text_ids": "texts",
    "encoding_ids": "encodings",
    "projection_ids": "projections",
    "model_ids": "models",
    "capture_ids": "captures",
    "job_ids": "jobs",
}
DASHBOARD_TABLES = ("feature_summaries", "feature_links", "feature_examples", "feature_example_values")
SCHEMA_VERSION = len(MIGRATIONS)


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower()


def _register(con, name: str, table: pa.Table) -> None:
    con.complete()  # DuckDB 2 refuses register() while an earlier statement's result is open
    con.register(name, table)


def _unregister(con, name: str) -> None:
    con.complete()
    con.unregister(name)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)  # object arrays would need pickle to load: refuse them
    return buffer.getvalue()


def _npz_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _vector_table(text_ids: np.ndarray, vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    lists = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    return pa.table({"text_id": pa.array(text_ids, pa.int64()), "vector": lists.cast(pa.list_(pa.float32()))})


class Store:
    """A latentviz workspace in one DuckDB file."""

    def __init__(self, path: str | Path, *, read_only: bool = False, lock_timeout: float = 60.0):
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        if read_only:
            if not self.path.exists():
                raise StoreError(
                    f"workspace {self.path} does not exist; create it first, e.g. `latentviz ingest bbc-news`"
                )
            self._check_version()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate()

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def _connect(self):
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                with _OPEN_CLOSE:
                    con = duckdb.connect(
                        str(self.path),
                        read_only=self.read_only,
                        # Nothing we run reads or writes other files: turn that off, then lock it.
                        config={"enable_external_access": False, "lock_configuration": True},
                    )
                break
            except duckdb.IOException as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise StoreError(
                        f"workspace {self.path} is busy (locked by another process); try again shortly"
                    ) from error
                time.sleep(0.05)
        try:
            yield con
        finally:
            with _OPEN_CLOSE:
                con.close()

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

    def _version(self, con) -> int:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        return con.execute("SELECT max(version) FROM schema_version").fetchone()[0] if exists else 0

    def _migrate(self) -> None:
        with self._transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"workspace {self.path} has schema v{version}, newer than this latentviz (v{SCHEMA_VERSION}); "
                    "upgrade latentviz"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    con.execute(statement)
                con.execute("INSERT INTO schema_version VALUES (?)", [step + 1])

    def _check_version(self) -> None:
        with self._connect() as con:
            version = self._version(con)
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"workspace {self.path} has schema v{version}, this latentviz reads v{SCHEMA_VERSION}; "
                "open it once without --read-only to migrate it"
            )

    def schema_version(self) -> int:
        with self._connect() as con:
            return self._version(con)

    def _frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self._connect() as con:
            return con.execute(sql, params or []).df()

    # -- datasets and texts --------------------------------------------------------------------

    def add_dataset(self, name: str, source: str, texts: pd.DataFrame, params: dict | None = None) -> int:
        """Add a dataset and its texts (columns text, label, metadata) in one transaction."""
        if texts.empty:
            raise StoreError(f"dataset {name!r} has no texts to add")
        with self._transaction() as con:
            if con.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0]:
                raise StoreError(f"dataset {name!r} already exists; choose another name or delete it first")
            con.execute(
                "INSERT INTO datasets (name, source, params) VALUES (?, ?, ?)", [name, source, json.dumps(params or {})]
            )
            incoming = pa.table(
                {
                    "text": pa.array(texts["text"].astype(str).tolist(), pa.string()),
                    "label": pa.array(
                        [None if pd.isna(v) else str(v) for v in texts.get("label", [None] * len(texts))], pa.string()
                    ),
                    "metadata": pa.array(
                        [json.dumps(m) if m else None for m in texts.get("metadata", [None] * len(texts))], pa.string()
                    ),
                }
            )
            _register(con, "incoming_texts", incoming)
            con.execute(
                "INSERT INTO texts SELECT nextval('text_ids'), ?, text, label, metadata::JSON FROM incoming_texts",
                [name],
            )
            _unregister(con, "incoming_texts")
        return len(texts)

    def delete_dataset(self, name: str) -> None:
        """Remove a dataset with its texts, encodings, maps and models (checkpoint folders stay on disk)."""
        with self._transaction() as con:
            if not con.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0]:
                raise StoreError(f"no dataset named {name!r}")
            encoding_ids = "SELECT id FROM encodings WHERE dataset = ?"
            projection_ids = f"SELECT id FROM projections WHERE encoding_id IN ({encoding_ids})"
            con.execute(f"DELETE FROM projection_points WHERE projection_id IN ({projection_ids})", [name])
            con.execute(f"DELETE FROM projections WHERE encoding_id IN ({encoding_ids})", [name])
            con.execute(f"DELETE FROM encoding_vectors WHERE encoding_id IN ({encoding_ids})", [name])
            con.execute("DELETE FROM encodings WHERE dataset = ?", [name])
            model_ids = "SELECT id FROM models WHERE dataset = ?"
            con.execute(f"DELETE FROM text_codes WHERE model_id IN ({model_ids})", [name])
            for table in ("feature_activations", *DASHBOARD_TABLES):
                con.execute(f"DELETE FROM {table} WHERE model_id IN ({model_ids})", [name])
            capture_ids = "SELECT id FROM captures WHERE dataset = ?"
            con.execute(f"DELETE FROM capture_tokens WHERE capture_id IN ({capture_ids})", [name])
            con.execute(f"DELETE FROM capture_masked WHERE capture_id IN ({capture_ids})", [name])
            con.execute(f"DELETE FROM capture_shards WHERE capture_id IN ({capture_ids})", [name])
            con.execute("DELETE FROM captures WHERE dataset = ?", [name])
            con.execute(f"DELETE FROM training_metrics WHERE model_id IN ({model_ids})", [name])
            con.execute("DELETE FROM models WHERE dataset = ?", [name])
            con.execute("DELETE FROM texts WHERE dataset = ?", [name])
            con.execute("DELETE FROM datasets WHERE name = ?", [name])

    def datasets(self) -> pd.DataFrame:
        return self._frame(
            """SELECT d.name, d.source, count(t.id) AS texts, count(DISTINCT t.label) AS labels, d.created
               FROM datasets d LEFT JOIN texts t ON t.dataset = d.name
               GROUP BY d.name, d.source, d.created ORDER BY d.created"""
        )

    def has_dataset(self, name: str) -> bool:
        with self._connect() as con:
            return bool(con.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0])

    def texts(self, dataset: str) -> pd.DataFrame:
        return self._frame("SELECT id, text, label FROM texts WHERE dataset = ? ORDER BY id", [dataset])

    def search_texts(self, dataset: str, query: str, limit: int = 10_000) -> pd.DataFrame:
        """Texts of a dataset containing `query` (case-insensitive, literal: % and _ match themselves)."""
        return self._frame(
            "SELECT id, text, label FROM texts WHERE dataset = ? AND contains(lower(text), lower(?)) ORDER BY id "
            "LIMIT ?",
            [dataset, query, limit],
        )

    # -- encodings -----------------------------------------------------------------------------

    def encoding_id(self, dataset: str, backbone: str, layer: int, dim: int, params: dict | None = None) -> int:
        """The id of the (dataset, backbone, layer) encoding, created empty when new."""
        with self._transaction() as con:
            row = con.execute(
                "SELECT id, dim FROM encodings WHERE dataset = ? AND backbone = ? AND layer = ?",
                [dataset, backbone, layer],
            ).fetchone()
            if row:
                if row[1] != dim:
                    raise StoreError(
                        f"stored encoding {row[0]} has dimension {row[1]}, not {dim}; delete the dataset's encodings "
                        "first"
                    )
                return row[0]
            new_id = con.execute("SELECT nextval('encoding_ids')").fetchone()[0]
            con.execute(
                "INSERT INTO encodings (id, dataset, backbone, layer, dim, params) VALUES (?, ?, ?, ?, ?, ?)",
                [new_id, dataset, backbone, layer, dim, json.dumps(params or {})],
            )
            return new_id

    def encodings(self, dataset: str | None = None) -> pd.DataFrame:
        return self._frame(
            """SELECT e.id, e.dataset, e.backbone, e.layer, e.dim, e.complete, count(v.text_id) AS vectors, e.created
               FROM encodings e LEFT JOIN encoding_vectors v ON v.encoding_id = e.id
               WHERE ? IS NULL OR e.dataset = ?
               GROUP BY ALL ORDER BY e.id""",
            [dataset, dataset],
        )

    def encoding(self, encoding_id: int) -> dict:
        frame = self._frame("SELECT * FROM encodings WHERE id = ?", [encoding_id])
        if frame.empty:
            raise StoreError(f"no encoding with id {encoding_id}")
        return frame.iloc[0].to_dict()

    def encoded_text_ids(self, encoding_id: int) -> set[int]:
        with self._connect() as con:
            rows = con.execute("SELECT text_id FROM encoding_vectors WHERE encoding_id = ?", [encoding_id]).fetchall()
        return {row[0] for row in rows}

    def add_vectors(self, encoding_id: int, text_ids, vectors: np.ndarray) -> None:
        with self._transaction() as con:
            _register(con, "incoming_vectors", _vector_table(np.asarray(text_ids), vectors))
            con.execute("INSERT INTO encoding_vectors SELECT ?, text_id, vector FROM incoming_vectors", [encoding_id])
            _unregister(con, "incoming_vectors")

    def mark_encoding_complete(self, encoding_id: int) -> None:
        with self._transaction() as con:
            con.execute("UPDATE encodings SET complete = true WHERE id = ?", [encoding_id])

    def vectors(self, encoding_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(text ids, float32 matrix) of an encoding, ordered by text id."""
        with self._connect() as con:
            table = con.sql(
                "SELECT text_id, vector FROM encoding_vectors WHERE encoding_id = $id ORDER BY text_id",
                params={"id": encoding_id},
            ).to_arrow_table()
            dim = con.execute("SELECT dim FROM encodings WHERE id = ?", [encoding_id]).fetchone()
        ids = table.column("text_id").to_numpy()
        if len(ids) == 0:
            return ids, np.zeros((0, dim[0] if dim else 0), np.float32)
        values = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return ids, values.astype(np.float32, copy=False).reshape(len(ids), -1)

    def nearest(self, encoding_id: int, vector: np.ndarray, k: int = 10) -> pd.DataFrame:
        """The k texts whose vectors are most cosine-similar to `vector`."""
        query = "SELECT ?::FLOAT[] AS vector"
        return self._nearest(query, [np.asarray(vector, np.float32).tolist()], encoding_id, None, k)

    def nearest_to_text(self, encoding_id: int, text_id: int, k: int = 10) -> pd.DataFrame:
        """The k texts most cosine-similar to a stored text, itself left out: one query, no vector
        sent back and forth."""
        query = "SELECT vector FROM encoding_vectors WHERE encoding_id = ? AND text_id = ?"
        return self._nearest(query, [encoding_id, text_id], encoding_id, text_id, k)

    def _nearest(self, query: str, params: list, encoding_id: int, exclude: int | None, k: int) -> pd.DataFrame:
        # The k best first, then their texts: joining texts to every row first takes twice as long.
        return self._frame(
            f"""WITH q AS ({query}),
               near AS (SELECT v.text_id AS id, list_cosine_similarity(v.vector, q.vector) AS similarity
                        FROM encoding_vectors v CROSS JOIN q
                        WHERE v.encoding_id = ? AND v.text_id IS DISTINCT FROM ?
                        ORDER BY similarity DESC LIMIT ?)
               SELECT near.id, t.text, t.label, near.similarity FROM near JOIN texts t ON t.id = near.id
               ORDER BY near.similarity DESC""",
            [*params, encoding_id, exclude, k],
        )

    def vector(self, encoding_id: int, text_id: int) -> np.ndarray:
        with self._connect() as con:
            row = con.execute(
                "SELECT vector FROM encoding_vectors WHERE encoding_id = ? AND text_id = ?", [encoding_id, text_id]
            ).fetchone()
        if row is None:
            raise StoreError(f"text {text_id} has no vector in encoding {encoding_id}")
        return np.asarray(row[0], np.float32)

    # -- projections ---------------------------------------------------------------------------

    def add_projection(
        self,
        encoding_id: int,
        method: str,
        params: dict,
        state: dict[str, np.ndarray],
        text_ids: np.ndarray,
        coords: np.ndarray,
    ) -> int:
        with self._transaction() as con:
            new_id = con.execute("SELECT nextval('projection_ids')").fetchone()[0]
            con.execute(
                "INSERT INTO projections (id, encoding_id, method, params, state) VALUES (?, ?, ?, ?, ?)",
                [new_id, encoding_id, method, json.dumps(params, sort_keys=True), _npz_bytes(state)],
            )
            points = pa.table(
                {
                    "text_id": pa.array(text_ids, pa.int64()),
                    "x": pa.array(coords[:, 0], pa.float32()),
                    "y": pa.array(coords[:, 1], pa.float32()),
                }
            )
            _register(con, "incoming_points", points)
            con.execute("INSERT INTO projection_points SELECT ?, text_id, x, y FROM incoming_points", [new_id])
            _unregister(con, "incoming_points")
        return new_id

    def find_projection(self, encoding_id: int, method: str, params: dict) -> int | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT max(id) FROM projections WHERE encoding_id = ? AND method = ? AND params = ?::JSON",
                [encoding_id, method, json.dumps(params, sort_keys=True)],
            ).fetchone()
        return row[0]

    def projections(self, dataset: str | None = None) -> pd.DataFrame:
        return self._frame(
            """SELECT p.id, p.encoding_id, e.dataset, e.backbone, e.layer, p.method, p.params,
                      (SELECT count(*) FROM projection_points pp WHERE pp.projection_id = p.id) AS points, p.created
               FROM projections p JOIN encodings e ON e.id = p.encoding_id
               WHERE ? IS NULL OR e.dataset = ? ORDER BY p.id""",
            [dataset, dataset],
        )

    def projection(self, projection_id: int) -> tuple[dict, dict, dict[str, np.ndarray]]:
        """(row: id, encoding_id, method; params; fitted state arrays) of one projection."""
        with self._connect() as con:
            row = con.execute(
                "SELECT id, encoding_id, method, params, state FROM projections WHERE id = ?", [projection_id]
            ).fetchone()
        if row is None:
            raise StoreError(f"no projection with id {projection_id}")
        return {"id": row[0], "encoding_id": row[1], "method": row[2]}, json.loads(row[3]), _npz_arrays(row[4])

    def projection_points(self, projection_id: int) -> pd.DataFrame:
        return self._frame(
            """SELECT p.text_id AS id, p.x, p.y, t.text, t.label
               FROM projection_points p JOIN texts t ON t.id = p.text_id
               WHERE p.projection_id = ? ORDER BY p.text_id""",
            [projection_id],
        )

    # -- models ----------------------------------------------------------------------------------

    def add_model(self, kind: str, name: str, dataset: str, backbone: str, config: dict) -> int:
        with self._transaction() as con:
            new_id = con.execute("SELECT nextval('model_ids')").fetchone()[0]
            con.execute(
                "INSERT INTO models (id, kind, name, dataset, backbone, config) VALUES (?, ?, ?, ?, ?, ?)",
                [new_id, kind, name, dataset, backbone, json.dumps(config)],
            )
        return new_id

    def finish_model(self, model_id: int, checkpoint: str, metrics: dict) -> None:
        """Store the checkpoint relative to the workspace's folder where it lies inside it (the models
        folder beside the workspace), so the workspace and its models can move together."""
        folder, home = Path(checkpoint).resolve(), self.path.resolve().parent
        stored = folder.relative_to(home).as_posix() if folder.is_relative_to(home) else str(folder)
        with self._transaction() as con:
            con.execute(
                "UPDATE models SET checkpoint = ?, metrics = ? WHERE id = ?", [stored, json.dumps(metrics), model_id]
            )

    def models(self) -> pd.DataFrame:
        frame = self._frame(
            "SELECT id, kind, name, dataset, backbone, config, metrics, checkpoint, created FROM models ORDER BY id"
        )
        return frame.assign(checkpoint=[None if pd.isna(c) else self._checkpoint_path(c) for c in frame["checkpoint"]])

    def model(self, model_id: int) -> dict | None:
        """One model's row, with config and metrics parsed (metrics {} until it finishes); None if absent."""
        frame = self._frame(
            "SELECT id, kind, name, dataset, backbone, config, metrics, checkpoint FROM models WHERE id = ?", [model_id]
        )
        if frame.empty:
            return None
        row = frame.iloc[0].to_dict()
        row["config"], row["metrics"] = json.loads(row["config"] or "{}"), json.loads(row["metrics"] or "{}")
        row["checkpoint"] = None if pd.isna(row["checkpoint"]) else self._checkpoint_path(row["checkpoint"])
        return row

    def _checkpoint_path(self, stored: str) -> str:
        """Relative to the workspace's folder (finish_model, bundles); before that, workspaces kept
        the path as given, relative to where the command ran."""
        beside = self.path.parent / stored
        return str(beside if beside.exists() or not Path(stored).exists() else Path(stored).resolve())

    # -- captured activations ------------------------------------------------------------------------

    def capture_id(self, dataset: str, backbone: str, layer: int, params: dict) -> int:
        """The id of the capture with these settings, created empty when new."""
        with self._transaction() as con:
            row = con.execute(
                "SELECT id FROM captures WHERE dataset = ? AND backbone = ? AND layer = ? AND params = ?",
                [dataset, backbone, layer, json.dumps(params, sort_keys=True)],
            ).fetchone()
            if row:
                return int(row[0])
            new_id = con.execute("SELECT nextval('capture_ids')").fetchone()[0]
            con.execute(
                "INSERT INTO captures (id, dataset, backbone, layer, params) VALUES (?, ?, ?, ?, ?)",
                [new_id, dataset, backbone, layer, json.dumps(params, sort_keys=True)],
            )
            return int(new_id)

    def capture(self, capture_id: int) -> dict | None:
        frame = self._frame(
            "SELECT id, dataset, backbone, layer, params, complete FROM captures WHERE id = ?", [capture_id]
        )
        if frame.empty:
            return None
        row = frame.iloc[0].to_dict()
        row["params"] = json.loads(row["params"] or "{}")
        return row

    def captures(self) -> pd.DataFrame:
        return self._frame(
            """SELECT c.id, c.dataset, c.backbone, c.layer, c.complete, coalesce(sum(s.tokens), 0) AS tokens,
               count(s.shard) AS shards
               FROM captures c LEFT JOIN capture_shards s ON s.capture_id = c.id GROUP BY ALL ORDER BY c.id"""
        )

    def add_shard(
        self, capture_id: int, shard: int, path: str, tokens: pd.DataFrame, masked: pd.DataFrame | None = None
    ) -> None:
        """Register a written shard file, its tokens (text_id, position, token: one per row of the
        file) and the tokens it left out (the same columns), in one transaction."""

        def arrow(frame: pd.DataFrame) -> pa.Table:
            return pa.table(
                {
                    "text_id": pa.array(frame["text_id"].to_numpy(), pa.int64()),
                    "position": pa.array(frame["position"].to_numpy(), pa.int32()),
                    "token": pa.array(frame["token"].tolist(), pa.string()),
                }
            )

        kept = arrow(tokens).append_column("row", pa.array(np.arange(len(tokens)), pa.int32()))
        with self._transaction() as con:
            _register(con, "incoming_tokens", kept)
            con.execute(
                "INSERT INTO capture_tokens SELECT ?, ?, row, text_id, position, token FROM incoming_tokens",
                [capture_id, shard],
            )
            if masked is not None and len(masked):
                _register(con, "incoming_masked", arrow(masked))
                con.execute(
                    "INSERT INTO capture_masked SELECT ?, text_id, position, token FROM incoming_masked", [capture_id]
                )
            con.execute("INSERT INTO capture_shards VALUES (?, ?, ?, ?)", [capture_id, shard, path, len(tokens)])

    def shards(self, capture_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT shard, path, tokens FROM capture_shards WHERE capture_id = ? ORDER BY shard", [capture_id]
        )

    def capture_tokens(self, capture_id: int) -> pd.DataFrame:
        """Every kept token in shard order: shard, row, text_id, position, token."""
        return self._frame(
            "SELECT shard, row, text_id, position, token FROM capture_tokens WHERE capture_id = ? ORDER BY shard, row",
            [capture_id],
        )

    def text_tokens(self, capture_id: int, text_ids: list[int]) -> pd.DataFrame:
        """All tokens of these texts in a capture, the left-out ones too: text_id, position, token,
        captured (False for a masked attention sink), in reading order."""
        return self._frame(
            """SELECT text_id, position, token, true AS captured FROM capture_tokens WHERE capture_id = ? AND
               list_contains(?::BIGINT[], text_id)
               UNION ALL
               SELECT text_id, position, token, false FROM capture_masked WHERE capture_id = ? AND
                   list_contains(?::BIGINT[], text_id)
               ORDER BY text_id, position""",
            [capture_id, text_ids, capture_id, text_ids],
        )

    def mark_capture_complete(self, capture_id: int) -> None:
        with self._transaction() as con:
            con.execute("UPDATE captures SET complete = true WHERE id = ?", [capture_id])

    # -- SAE features ----------------------------------------------------------------------------------

    def set_feature_activations(
        self, model_id: int, text_ids: np.ndarray, positions: np.ndarray, features: np.ndarray, values: np.ndarray
    ) -> None:
        """Replace a model's stored sparse activations (one row per token and firing feature); its
        dashboards, built from the old ones, go with them."""
        rows = pa.table(
            {
                "text_id": pa.array(text_ids, pa.int64()),
                "position": pa.array(positions, pa.int32()),
                "feature": pa.array(features, pa.int32()),
                "value": pa.array(values, pa.float32()),
            }
        )
        with self._transaction() as con:
            for table in ("feature_activations", *DASHBOARD_TABLES):
                con.execute(f"DELETE FROM {table} WHERE model_id = ?", [model_id])
            _register(con, "incoming_activations", rows)
            con.execute(
                "INSERT INTO feature_activations SELECT ?, text_id, position, feature, value FROM incoming_activations",
                [model_id],
            )

    def feature_stats(self, model_id: int, tokens: int) -> pd.DataFrame:
        """Per feature that fired: firing count and density (over `tokens`), mean, max and quantiles."""
        return self._frame(
            """SELECT feature, count(*) AS fires, count(*) / ?::DOUBLE AS density, avg(value) AS mean,
                      max(value) AS max, quantile_cont(value, 0.5) AS median, quantile_cont(value, 0.9) AS q90,
                      quantile_cont(value, 0.99) AS q99
               FROM feature_activations WHERE model_id = ? GROUP BY feature ORDER BY feature""",
            [tokens, model_id],
        )

    def feature_histograms(self, model_id: int, bins: int) -> pd.DataFrame:
        """Every feature's activation counts in `bins` equal intervals from 0 to its max: feature, bin, count."""
        return self._frame(
            """WITH a AS (SELECT feature, value, max(value) OVER (PARTITION BY feature) AS top
                          FROM feature_activations WHERE model_id = ?)
               SELECT feature, least(CAST(floor(value / top * ?) AS INTEGER), ? - 1) AS bin, count(*) AS count
               FROM a GROUP BY ALL ORDER BY feature, bin""",
            [model_id, bins, bins],
        )

    _EXAMPLES = """WITH a AS (
               SELECT text_id, position, feature, value, max(value) OVER (PARTITION BY feature) AS top
               FROM feature_activations WHERE model_id = $model),
           b AS (SELECT *, least(CAST(floor(value / top * $buckets) AS INTEGER), $buckets - 1) AS bucket FROM a),
           strongest AS (SELECT * FROM b QUALIFY row_number() OVER (
               PARTITION BY feature, text_id ORDER BY value DESC, position) = 1),
           best_in_text AS (SELECT *, row_number() OVER (PARTITION BY feature ORDER BY value DESC, text_id) AS top_rank
               FROM strongest),
           intervals AS (SELECT feature, bucket, row_number() OVER (
               PARTITION BY feature, bucket ORDER BY hash(text_id, position)) AS rank, text_id, position, value
               FROM best_in_text WHERE top_rank > $top)
           SELECT feature, -1 AS bucket, top_rank AS rank, text_id, position, value FROM best_in_text
           WHERE top_rank <= $top
           UNION ALL
           SELECT feature, bucket, rank, text_id, position, value FROM intervals WHERE rank <= $per_bucket"""

    def set_feature_examples(self, model_id: int, buckets: int, per_feature: int, per_bucket: int) -> None:
        """Choose and store every feature's examples from its stored activations: its `per_feature`
        strongest activations (bucket = -1) and `per_bucket` from each of `buckets` equal intervals
        between 0 and its max. Every text counts at its strongest token for the feature, and the
        intervals draw from the texts the top list leaves, so no text shows twice."""
        with self._transaction() as con:
            for table in ("feature_examples", "feature_example_values"):
                con.execute(f"DELETE FROM {table} WHERE model_id = ?", [model_id])
            con.execute(  # in feature order, so a feature's rows sit together and lookups skip the rest
                f"INSERT INTO feature_examples SELECT $model, * FROM ({self._EXAMPLES}) ORDER BY feature, bucket, rank",
                {"model": model_id, "buckets": buckets, "top": per_feature, "per_bucket": per_bucket},
            )
            con.execute(
                """INSERT INTO feature_example_values
                   SELECT a.model_id, a.feature, a.text_id, a.position, a.value FROM feature_activations a
                   SEMI JOIN feature_examples e ON e.model_id = a.model_id AND e.feature = a.feature
                       AND e.text_id = a.text_id
                   WHERE a.model_id = ? ORDER BY a.feature, a.text_id, a.position""",
                [model_id],
            )

    def set_feature_dashboards(self, model_id: int, summaries: pd.DataFrame, links: pd.DataFrame) -> None:
        """Store every feature's summary row and links, replacing any earlier build; written last,
        so a model has dashboards only once every part is in."""
        summaries = pa.Table.from_pandas(summaries, preserve_index=False)
        links = pa.Table.from_pandas(links, preserve_index=False)
        with self._transaction() as con:
            for table in ("feature_summaries", "feature_links"):
                con.execute(f"DELETE FROM {table} WHERE model_id = ?", [model_id])
            _register(con, "incoming_summaries", summaries)
            con.execute(
                """INSERT INTO feature_summaries SELECT ?, feature, fires, density, mean, max, median, q90, q99,
                   label, label_confidence, histogram FROM incoming_summaries""",
                [model_id],
            )
            _register(con, "incoming_links", links)
            con.execute(
                """INSERT INTO feature_links SELECT ?, feature, kind, rank, other, token, score FROM incoming_links
                   ORDER BY feature, kind, rank""",
                [model_id],
            )

    def feature_dashboard(self, model_id: int, capture_id: int, feature: int) -> tuple[pd.DataFrame, ...]:
        """What one feature's dashboard reads, on one connection: its examples (bucket, rank,
        text_id, position, value), every token of their texts with the feature's activation on it
        (text_id, position, token, value; masked sinks included at 0), and its links (kind, rank,
        other, token, score)."""
        with self._connect() as con:
            examples = con.execute(
                """SELECT bucket, rank, text_id, position, value FROM feature_examples
                   WHERE model_id = ? AND feature = ? ORDER BY bucket, rank""",
                [model_id, feature],
            ).df()
            texts = [int(t) for t in examples["text_id"].unique()]
            tokens = con.execute(
                """WITH t AS (
                       SELECT text_id, position, token FROM capture_tokens
                       WHERE capture_id = ? AND list_contains(?::BIGINT[], text_id)
                       UNION ALL
                       SELECT text_id, position, token FROM capture_masked
                       WHERE capture_id = ? AND list_contains(?::BIGINT[], text_id)),
                   v AS (SELECT text_id, position, value FROM feature_example_values
                         WHERE model_id = ? AND feature = ?)
                   SELECT t.text_id, t.position, t.token, coalesce(v.value, 0.0) AS value
                   FROM t LEFT JOIN v USING (text_id, position) ORDER BY t.text_id, t.position""",
                [capture_id, texts, capture_id, texts, model_id, feature],
            ).df()
            links = con.execute(
                """SELECT kind, rank, other, token, score FROM feature_links WHERE model_id = ? AND feature = ?
                   ORDER BY kind, rank""",
                [model_id, feature],
            ).df()
        return examples, tokens, links

    def _has_rows(self, table: str, model_id: int) -> bool:
        with self._connect() as con:
            return bool(con.execute(f"SELECT count(*) > 0 FROM {table} WHERE model_id = ?", [model_id]).fetchone()[0])

    def has_feature_dashboards(self, model_id: int) -> bool:
        return self._has_rows("feature_summaries", model_id)

    def feature_summaries(self, model_id: int) -> pd.DataFrame:
        return self._frame(
            """SELECT feature, fires, density, mean, max, median, q90, q99, label, label_confidence, histogram
               FROM feature_summaries WHERE model_id = ? ORDER BY feature""",
            [model_id],
        )

    def stored_examples(self, model_id: int) -> pd.DataFrame:
        """feature, bucket, rank, text_id, position, value of every feature's stored examples."""
        return self._frame(
            """SELECT feature, bucket, rank, text_id, position, value FROM feature_examples
               WHERE model_id = ? ORDER BY feature, bucket, rank""",
            [model_id],
        )

    def has_feature_activations(self, model_id: int) -> bool:
        return self._has_rows("feature_activations", model_id)

    def feature_values(self, model_id: int, feature: int) -> np.ndarray:
        frame = self._frame(
            "SELECT value FROM feature_activations WHERE model_id = ? AND feature = ?", [model_id, feature]
        )
        return frame["value"].to_numpy()

    def feature_in_texts(self, model_id: int, feature: int, text_ids: list[int]) -> pd.DataFrame:
        """text_id, position, value of one feature's activations in the given texts."""
        return self._frame(
            """SELECT text_id, position, value FROM feature_activations
                              WHERE model_id = ? AND feature = ? AND list_contains(?::BIGINT[], text_id)""",
            [model_id, feature, [int(t) for t in text_ids]],
        )

    def trained_model(self, model_id: int, kind: str, name: str) -> dict:
        """The finished model of this kind with this id (see `model`); a one-line error otherwise."""
        row = self.model(model_id)
        if row is None or row["kind"] != kind or row["checkpoint"] is None:
            raise StoreError(f"no trained {name} with id {model_id}")
        return row

    def add_training_metrics(self, model_id: int, step: int, split: str, metrics: dict[str, float]) -> None:
        rows = pa.table({"name": list(metrics), "value": pa.array([float(v) for v in metrics.values()], pa.float64())})
        with self._transaction() as con:
            _register(con, "incoming_metrics", rows)
            con.execute(
                "INSERT INTO training_metrics SELECT ?, ?, ?, name, value FROM incoming_metrics",
                [model_id, step, split],
            )
            _unregister(con, "incoming_metrics")

    def drop_training_metrics_after(self, model_id: int, step: int) -> None:
        """Forget curve points past a checkpoint, before a resumed run writes them again."""
        with self._transaction() as con:
            con.execute("DELETE FROM training_metrics WHERE model_id = ? AND step > ?", [model_id, step])

    def training_metrics(self, model_id: int) -> pd.DataFrame:
        return self._frame(
            "SELECT step, split, name, value FROM training_metrics WHERE model_id = ? ORDER BY step, name", [model_id]
        )

    def add_codes(
        self,
        model_id: int,
        text_ids: np.ndarray,
        codes: np.ndarray,
        positions: np.ndarray | None = None,
        tokens: list[str] | None = None,
    ) -> None:
        """codes: (N, slots, stages) integer array, one row per text; for a token-level model one row
        per token, with its text id, its position (stored as the slot) and the token string."""
        n, slots, stages = codes.shape
        slot = (
            np.tile(np.repeat(np.arange(slots), stages), n)
            if positions is None
            else np.repeat(np.asarray(positions), stages)
        )
        table = pa.table(
            {
                "text_id": pa.array(np.repeat(np.asarray(text_ids), slots * stages), pa.int64()),
                "slot": pa.array(slot, pa.int32()),
                "stage": pa.array(np.tile(np.arange(stages), n * slots), pa.int32()),
                "code": pa.array(codes.reshape(-1), pa.int64()),
                "token": pa.array(
                    [None] * len(slot) if tokens is None else np.repeat(np.asarray(tokens, dtype=object), stages),
                    pa.string(),
                ),
            }
        )
        with self._transaction() as con:
            _register(con, "incoming_codes", table)
            con.execute(
                "INSERT INTO text_codes SELECT ?, text_id, slot, stage, code, token FROM incoming_codes", [model_id]
            )
            _unregister(con, "incoming_codes")

    def codes(self, model_id: int) -> pd.DataFrame:
        return self._frame(
            """SELECT c.text_id AS id, c.slot, c.stage, c.code, c.token, t.text, t.label
               FROM text_codes c JOIN texts t ON t.id = c.text_id
               WHERE c.model_id = ? ORDER BY c.text_id, c.slot, c.stage""",
            [model_id],
        )

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
        return self._frame(
            """SELECT *, epoch(current_timestamp - began) AS seconds,
                      epoch(current_timestamp - stage_began) AS stage_seconds
               FROM jobs WHERE status IN ('queued', 'running') ORDER BY id"""
        )

    def job(self, job_id: int) -> dict:
        frame = self._frame("SELECT * FROM jobs WHERE id = ?", [job_id])
        if frame.empty:
            raise StoreError(f"no job with id {job_id}")
        return frame.iloc[0].to_dict()

    # -- summary -------------------------------------------------------------------------------

    def copy_into(self, target: Path, datasets: list[str], model_ids: list[int], models_folder: str) -> None:
        """A new workspace at `target` holding only these datasets (texts, encodings, maps, captured
        tokens) and these models (curves, codes, dashboards). Checkpoints are written relative to the
        target's folder, as `models_folder/<id>`: the copy works wherever its folder is moved."""
        Store(target)  # the current schema, empty
        with duckdb.connect(str(target)) as con:
            quoted = str(self.path).replace("'", "''")  # ATTACH takes no parameter: a quoted literal
            try:
                con.execute(f"ATTACH '{quoted}' AS source (READ_ONLY)")
            except duckdb.IOException as error:
                if not _is_lock_error(error):
                    raise
                raise StoreError(
                    f"workspace {self.path} is in use by a writer: stop its worker or app, then export"
                ) from None
            chosen = {"datasets": list(datasets), "models": list(model_ids)}
            for table, keep in EXPORTED.items():  # DuckDB wants exactly the parameters a statement names
                used = {name: value for name, value in chosen.items() if f"${name}" in keep}
                con.execute(f"INSERT INTO {table} SELECT * FROM source.{table} WHERE {keep}", used)
            con.execute("UPDATE models SET checkpoint = ? || '/' || id WHERE checkpoint IS NOT NULL", [models_folder])
            for sequence, table in SEQUENCES.items():  # new ids continue after the copied ones
                start = con.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
                con.execute(f"CREATE OR REPLACE SEQUENCE {sequence} START {int(start)}")
            con.execute("DETACH source")

    def info(self) -> dict:
        """Everything in the workspace, as plain JSON-ready values."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records", date_format="iso"))

        return {
            "workspace": str(self.path),
            "schema_version": self.schema_version(),
            "datasets": records(self.datasets()),
            "encodings": records(self.encodings()),
            "projections": [dict(row, params=json.loads(row["params"])) for row in records(self.projections())],
            "models": [
                dict(row, config=json.loads(row["config"] or "{}"), metrics=json.loads(row["metrics"] or "{}"))
                for row in records(self.models())
            ],
        }
