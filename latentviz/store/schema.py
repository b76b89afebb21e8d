"""The workspace's schema: its migrations, its version, and what a bundle exports of each table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from latentviz import settings
from latentviz.store.arrays import Arrays, move_tables_into_shards
from latentviz.store.connection import ARRAYS_SETTING, StoreError, has_table, is_lock_error, recorded_arrays
from latentviz.store.locations import canonical, is_url, remote

# Each entry migrates the schema from version i to i + 1: SQL statements, or a function of the
# connection and the store where rows move out to files. Never edit a released entry: append.
MIGRATIONS: list[list[str | Callable]] = [
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
    [
        # An evaluation of a model (latentviz eval): its figures, what it cost and on how many tokens.
        """CREATE TABLE evaluations (
            model_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            figures JSON NOT NULL,
            seconds DOUBLE NOT NULL,
            tokens BIGINT NOT NULL,
            created TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (model_id, name))""",
        # Two SAEs matched feature to feature (latentviz compare): the summary, and each feature of the
        # first with its partner in the second and how it was classed (matched, split, absorbed, unmatched).
        """CREATE TABLE comparisons (
            model_id INTEGER NOT NULL,
            other_id INTEGER NOT NULL,
            figures JSON NOT NULL,
            seconds DOUBLE NOT NULL,
            tokens BIGINT NOT NULL,
            created TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (model_id, other_id))""",
        """CREATE TABLE feature_matches (
            model_id INTEGER NOT NULL,
            other_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            partner INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            cosine DOUBLE NOT NULL,
            correlation DOUBLE,
            density DOUBLE,
            partner_density DOUBLE,
            PRIMARY KEY (model_id, other_id, feature))""",
    ],
    [
        # How well each feature's label tells its activating texts from others, by scorer (latentviz eval).
        """CREATE TABLE feature_label_scores (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            scorer VARCHAR NOT NULL,
            score DOUBLE NOT NULL,
            PRIMARY KEY (model_id, feature, scorer))""",
    ],
    [
        # An LLM's explanation of a feature and its scores on held-out windows (latentviz eval, explanations).
        """CREATE TABLE feature_explanations (
            model_id INTEGER NOT NULL,
            feature INTEGER NOT NULL,
            explainer VARCHAR NOT NULL,
            explanation VARCHAR NOT NULL,
            detection DOUBLE,
            detection_auroc DOUBLE,
            fuzzing DOUBLE,
            fuzzing_auroc DOUBLE,
            embedding DOUBLE,
            PRIMARY KEY (model_id, feature))""",
    ],
    [
        # Large arrays move out of the file into Parquet shards it catalogs (store/arrays.py); path is
        # relative to the workspace's .arrays folder, so a copied workspace reads its own copies.
        """CREATE TABLE array_shards (
            kind VARCHAR NOT NULL,
            owner INTEGER NOT NULL,
            shard INTEGER NOT NULL,
            path VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            PRIMARY KEY (kind, owner, shard))""",
        move_tables_into_shards,
        "DROP TABLE encoding_vectors",
        "DROP TABLE feature_activations",
        "DROP TABLE capture_shards",
    ],
    [
        # What a workspace is created with: "arrays", its shards folder's URL on object storage
        # (store/locations.py); without it, the .arrays folder beside the file
        "CREATE TABLE workspace_settings (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    ],
    [
        # A map's area names by zoom level (projection.map_labels), stored as the map is made so that
        # its first view only reads them; NULL for a map made before, named on its first view.
        "ALTER TABLE projections ADD COLUMN area_names JSON",
    ],
]
# What `copy_into` keeps of each table, given $datasets and $models; the job queue starts empty, and so
# do the captures' shards (activations only training reads; their tokens go, for the dashboards' texts).
# tests/test_bundle.py checks that every table is named here or in NOT_EXPORTED.
_OF_DATASETS = "list_contains($datasets, dataset)"
_OF_MODELS = "list_contains($models, model_id)"
_OF_ENCODINGS = f"encoding_id IN (SELECT id FROM source.encodings WHERE {_OF_DATASETS})"
_OF_CAPTURES = f"capture_id IN (SELECT id FROM source.captures WHERE {_OF_DATASETS})"
EXPORTED = {
    "datasets": "list_contains($datasets, name)",
    "texts": _OF_DATASETS,
    "encodings": _OF_DATASETS,
    "projections": _OF_ENCODINGS,
    "projection_points": f"projection_id IN (SELECT id FROM source.projections WHERE {_OF_ENCODINGS})",
    "models": "list_contains($models, id)",
    "training_metrics": _OF_MODELS,
    "text_codes": _OF_MODELS,
    "captures": _OF_DATASETS,
    "capture_tokens": _OF_CAPTURES,
    "capture_masked": _OF_CAPTURES,
    # the shards' catalog rows; copy_into copies their files
    "array_shards": f"""(kind = 'encodings' AND owner IN (SELECT id FROM source.encodings WHERE {_OF_DATASETS}))
                        OR (kind = 'feature_activations' AND list_contains($models, owner))""",
    "feature_summaries": _OF_MODELS,
    "feature_links": _OF_MODELS,
    "feature_examples": _OF_MODELS,
    "feature_example_values": _OF_MODELS,
    "evaluations": _OF_MODELS,
    "feature_label_scores": _OF_MODELS,
    "feature_explanations": _OF_MODELS,
    "comparisons": f"{_OF_MODELS} AND list_contains($models, other_id)",
    "feature_matches": f"{_OF_MODELS} AND list_contains($models, other_id)",
}
NOT_EXPORTED = ("jobs", "schema_version", "workspace_settings")  # a copy's shards are in its own folder
SEQUENCES = {
    "text_ids": "texts",
    "encoding_ids": "encodings",
    "projection_ids": "projections",
    "model_ids": "models",
    "capture_ids": "captures",
    "job_ids": "jobs",
}
# what a feature build writes; the label scores go with the labels they scored
DASHBOARD_TABLES = (
    "feature_summaries",
    "feature_links",
    "feature_examples",
    "feature_example_values",
    "feature_label_scores",
    "feature_explanations",
)
SCHEMA_VERSION = len(MIGRATIONS)


class Schema(Arrays):
    """Migrating a workspace to this latentviz's schema, and copying part of it into a new one."""

    def _version(self, con) -> int:
        if not has_table(con, "schema_version"):  # a new, empty file
            return 0
        return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    def _migrate(self) -> None:
        with self.deleting() as doomed, self._transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"workspace {self.path} has schema v{version}, newer than this latentviz (v{SCHEMA_VERSION}); "
                    "upgrade latentviz"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    if callable(statement):
                        doomed += statement(con, self)  # files it replaced, deleted after the commit
                    else:
                        con.execute(statement)
                con.execute("INSERT INTO schema_version VALUES (?)", [step + 1])

    def _place_arrays(self, wanted: str) -> None:
        """Record `wanted` (a URL) as where a new workspace keeps its shards; refuse to move an existing one's."""
        if not is_url(wanted):
            raise StoreError(
                f"{settings.ARRAYS_ENV} takes a URL (s3://bucket/prefix), not {wanted!r}: local shards always live "
                "beside the workspace file"
            )
        if canonical(wanted) == canonical(self.arrays_location):
            return
        filesystem, path = remote(wanted)
        try:
            filesystem.exists(path)
        except Exception as error:  # credentials, endpoint, bucket: whatever the filesystem says
            problem = f"{type(error).__name__}: {error}"
            raise StoreError(f"cannot reach {wanted} ({problem}); check its URL and credentials") from None
        with self._transaction() as con:
            if con.execute("SELECT count(*) FROM array_shards").fetchone()[0] or recorded_arrays(con) is not None:
                raise StoreError(
                    f"workspace {self.path} keeps its arrays at {self.arrays_location}, not {wanted}; they do not "
                    f"move: unset {settings.ARRAYS_ENV}, or start a new workspace"
                )
            con.execute("INSERT INTO workspace_settings VALUES (?, ?)", [ARRAYS_SETTING, canonical(wanted)])
        self._arrays_location = canonical(wanted)

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

    def copy_into(self, target: Path, datasets: list[str], model_ids: list[int], models_folder: str) -> None:
        """A new workspace at `target` holding only these datasets (texts, encodings, maps, captured
        tokens) and these models (curves, codes, dashboards). Checkpoints are written relative to the
        target's folder, as `models_folder/<id>`: the copy works wherever its folder is moved."""
        type(self)(target)  # the current schema, empty
        with duckdb.connect(str(target)) as con:
            quoted = str(self.path).replace("'", "''")  # ATTACH takes no parameter: a quoted literal
            try:
                con.execute(f"ATTACH '{quoted}' AS source (READ_ONLY)")
            except duckdb.IOException as error:
                if not is_lock_error(error):
                    raise
                raise StoreError(
                    f"workspace {self.path} is in use by a writer: stop its worker or app, then export"
                ) from None
            chosen = {"datasets": list(datasets), "models": list(model_ids)}
            for table, keep in EXPORTED.items():  # DuckDB wants exactly the parameters a statement names
                used = {name: value for name, value in chosen.items() if f"${name}" in keep}
                con.execute(f"INSERT INTO {table} SELECT * FROM source.{table} WHERE {keep}", used)
            self.copy_shards_into(con, target)
            con.execute("UPDATE models SET checkpoint = ? || '/' || id WHERE checkpoint IS NOT NULL", [models_folder])
            for sequence, table in SEQUENCES.items():  # new ids continue after the copied ones
                start = con.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
                con.execute(f"CREATE OR REPLACE SEQUENCE {sequence} START {int(start)}")
            con.execute("DETACH source")
