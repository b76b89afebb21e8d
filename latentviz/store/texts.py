"""Datasets and their texts, encodings (one vector per text) and 2-D projections of them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from latentviz.store.arrays import Arrays
from latentviz.store.connection import StoreError, insert, npz_arrays, npz_bytes
from latentviz.store.schema import DASHBOARD_TABLES


def _vector_table(text_ids: np.ndarray, vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    lists = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    return pa.table({"text_id": pa.array(text_ids, pa.int64()), "vector": lists.cast(pa.list_(pa.float32()))})


SHARD_OWNERS = {"encodings": "encodings", "feature_activations": "models", "captures": "captures"}  # kind: table


class Texts(Arrays):
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
            insert(
                con,
                incoming,
                "INSERT INTO texts SELECT nextval('text_ids'), ?, text, label, metadata::JSON FROM incoming",
                [name],
            )
        return len(texts)

    def delete_dataset(self, name: str) -> None:
        """Remove a dataset with its texts, encodings, maps and models (checkpoint folders stay on disk)."""
        with self.deleting() as doomed, self._transaction() as con:
            if not con.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0]:
                raise StoreError(f"no dataset named {name!r}")
            for kind, owners in (
                ("encodings", "encodings"),
                ("feature_activations", "models"),
                ("captures", "captures"),
            ):
                ids = [row[0] for row in con.execute(f"SELECT id FROM {owners} WHERE dataset = ?", [name]).fetchall()]
                doomed += self.drop_shards(con, kind, ids)
            encoding_ids = "SELECT id FROM encodings WHERE dataset = ?"
            projection_ids = f"SELECT id FROM projections WHERE encoding_id IN ({encoding_ids})"
            con.execute(f"DELETE FROM projection_points WHERE projection_id IN ({projection_ids})", [name])
            con.execute(f"DELETE FROM projections WHERE encoding_id IN ({encoding_ids})", [name])
            con.execute("DELETE FROM encodings WHERE dataset = ?", [name])
            model_ids = "SELECT id FROM models WHERE dataset = ?"
            con.execute(f"DELETE FROM text_codes WHERE model_id IN ({model_ids})", [name])
            for table in DASHBOARD_TABLES:
                con.execute(f"DELETE FROM {table} WHERE model_id IN ({model_ids})", [name])
            capture_ids = "SELECT id FROM captures WHERE dataset = ?"
            con.execute(f"DELETE FROM capture_tokens WHERE capture_id IN ({capture_ids})", [name])
            con.execute(f"DELETE FROM capture_masked WHERE capture_id IN ({capture_ids})", [name])
            con.execute("DELETE FROM captures WHERE dataset = ?", [name])
            con.execute(f"DELETE FROM training_metrics WHERE model_id IN ({model_ids})", [name])
            con.execute(f"DELETE FROM evaluations WHERE model_id IN ({model_ids})", [name])
            for table in ("comparisons", "feature_matches"):
                con.execute(
                    f"DELETE FROM {table} WHERE model_id IN ({model_ids}) OR other_id IN ({model_ids})", [name, name]
                )
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
            """SELECT e.id, e.dataset, e.backbone, e.layer, e.dim, e.complete, coalesce(sum(s.rows), 0) AS vectors,
                      e.created
               FROM encodings e LEFT JOIN array_shards s ON s.kind = 'encodings' AND s.owner = e.id
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
            relation, params = self.shard_relation(con, "encodings", encoding_id)
            rows = con.execute(f"SELECT text_id FROM {relation}", params).fetchall()
        return {row[0] for row in rows}

    def add_vectors(self, encoding_id: int, text_ids, vectors: np.ndarray) -> None:
        """Add these texts' vectors to the encoding, as a new shard."""
        order = np.argsort(text_ids, kind="stable")
        with self._transaction() as con:
            self.add_shards(con, "encodings", encoding_id, _vector_table(np.asarray(text_ids)[order], vectors[order]))

    def mark_encoding_complete(self, encoding_id: int) -> None:
        with self._transaction() as con:
            con.execute("UPDATE encodings SET complete = true WHERE id = ?", [encoding_id])

    def vectors(self, encoding_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(text ids, float32 matrix) of an encoding, ordered by text id."""
        with self._connect() as con:
            relation, params = self.shard_relation(con, "encodings", encoding_id)
            table = con.sql(f"SELECT text_id, vector FROM {relation} ORDER BY text_id", params=params).to_arrow_table()
            dim = con.execute("SELECT dim FROM encodings WHERE id = ?", [encoding_id]).fetchone()
        ids = table.column("text_id").to_numpy()
        # One writable matrix, filled from Arrow's chunks read in place: the map's neighbour index
        # then makes it unit length where it lies (300 MB at 200,000 MiniLM vectors, allocated once)
        vectors = np.empty((len(ids), dim[0] if dim else 0), np.float32)
        row = 0
        for chunk in table.column("vector").chunks:
            values = chunk.flatten().to_numpy(zero_copy_only=False)
            vectors[row : row + len(chunk)] = values.reshape(len(chunk), vectors.shape[1])  # an empty chunk too
            row += len(chunk)
        return ids, vectors

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
                [new_id, encoding_id, method, json.dumps(params, sort_keys=True), npz_bytes(state)],
            )
            points = pa.table(
                {
                    "text_id": pa.array(text_ids, pa.int64()),
                    "x": pa.array(coords[:, 0], pa.float32()),
                    "y": pa.array(coords[:, 1], pa.float32()),
                }
            )
            insert(con, points, "INSERT INTO projection_points SELECT ?, text_id, x, y FROM incoming", [new_id])
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
        return {"id": row[0], "encoding_id": row[1], "method": row[2]}, json.loads(row[3]), npz_arrays(row[4])

    def area_names(self, projection_id: int) -> list[dict] | None:
        """A map's stored area names (projection.map_labels), or None where they were never stored."""
        with self._connect() as con:
            row = con.execute("SELECT area_names FROM projections WHERE id = ?", [projection_id]).fetchone()
        if row is None:
            raise StoreError(f"no projection with id {projection_id}")
        return None if row[0] is None else json.loads(row[0])

    def set_area_names(self, projection_id: int, names: list[dict]) -> None:
        with self._transaction() as con:
            con.execute("UPDATE projections SET area_names = ? WHERE id = ?", [json.dumps(names), projection_id])

    def projection_points(self, projection_id: int) -> pd.DataFrame:
        return self._arrow_frame(
            """SELECT p.text_id AS id, p.x, p.y, t.text, t.label
               FROM projection_points p JOIN texts t ON t.id = p.text_id
               WHERE p.projection_id = ? ORDER BY p.text_id""",
            [projection_id],
        )
