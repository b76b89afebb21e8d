"""Trained models: their rows and checkpoints, training curves, and the discrete codes a VQ model gives each text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from latentviz.constants import MODELS_SUFFIX
from latentviz.settings import models_dir
from latentviz.store.connection import Connection, StoreError, insert

# model_id, kind, points: how many held-out figures each unfinished model (a run training now, or
# stopped) has recorded (Jobs.watched reads it with the queue)
LIVE_CURVE_POINTS = """SELECT m.id AS model_id, m.kind, count(t.model_id) AS points
    FROM models m LEFT JOIN training_metrics t ON t.model_id = m.id
    WHERE m.checkpoint IS NULL GROUP BY m.id, m.kind ORDER BY m.id"""


class Models(Connection):
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
        owner, _, rest = stored.partition("/")
        own = models_dir(self.path) / rest
        if owner.endswith(MODELS_SUFFIX) and rest and own.exists():  # its own, also in a copy under another name
            return str(own)
        beside = self.path.parent / stored
        return str(beside if beside.exists() or not Path(stored).exists() else Path(stored).resolve())

    def trained_model(self, model_id: int, kind: str, name: str) -> dict:
        """The finished model of this kind with this id (see `model`); a one-line error otherwise."""
        row = self.model(model_id)
        if row is None or row["kind"] != kind or row["checkpoint"] is None:
            raise StoreError(f"no trained {name} with id {model_id}")
        return row

    def add_training_metrics(self, model_id: int, step: int, split: str, metrics: dict[str, float]) -> None:
        rows = pa.table({"name": list(metrics), "value": pa.array([float(v) for v in metrics.values()], pa.float64())})
        with self._transaction() as con:
            insert(
                con,
                rows,
                "INSERT INTO training_metrics SELECT ?, ?, ?, name, value FROM incoming",
                [model_id, step, split],
            )

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
            insert(
                con,
                table,
                "INSERT INTO text_codes SELECT ?, text_id, slot, stage, code, token FROM incoming",
                [model_id],
            )

    def codes(
        self, model_id: int, *, stage: int | None = None, code: int | None = None, slot: int | None = None
    ) -> pd.DataFrame:
        """A model's codes with their texts (id, slot, stage, code, token, text, label), only those
        at `stage`, equal to `code` or at code position `slot` where given."""
        return self._frame(
            """SELECT c.text_id AS id, c.slot, c.stage, c.code, c.token, t.text, t.label
               FROM text_codes c JOIN texts t ON t.id = c.text_id
               WHERE c.model_id = $model AND ($stage IS NULL OR c.stage = $stage)
                 AND ($code IS NULL OR c.code = $code) AND ($slot IS NULL OR c.slot = $slot)
               ORDER BY c.text_id, c.slot, c.stage""",
            {"model": model_id, "stage": stage, "code": code, "slot": slot},
        )

    # -- evaluations and comparisons ---------------------------------------------------------------

    def set_evaluation(self, model_id: int, name: str, figures: dict, seconds: float, tokens: int) -> None:
        """Store (or replace) one evaluation of a model."""
        with self._transaction() as con:
            con.execute("DELETE FROM evaluations WHERE model_id = ? AND name = ?", [model_id, name])
            con.execute(
                "INSERT INTO evaluations (model_id, name, figures, seconds, tokens) VALUES (?, ?, ?, ?, ?)",
                [model_id, name, json.dumps(figures), float(seconds), int(tokens)],
            )

    def evaluations(self, model_id: int | None = None) -> pd.DataFrame:
        """Evaluations (model_id, name, figures parsed, seconds, tokens, created), of one model or all."""
        frame = self._frame(
            """SELECT model_id, name, figures, seconds, tokens, created FROM evaluations
               WHERE $model IS NULL OR model_id = $model ORDER BY model_id, name""",
            {"model": model_id},
        )
        return frame.assign(figures=[json.loads(f) for f in frame["figures"]])

    def set_comparison(
        self, model_id: int, other_id: int, figures: dict, features: pd.DataFrame, seconds: float, tokens: int
    ) -> None:
        """Store (or replace) the matching of one SAE's features to another's: the summary and, per
        feature of the first, its partner (feature, partner, kind, cosine, correlation, density,
        partner_density)."""
        rows = pa.Table.from_pandas(
            features[["feature", "partner", "kind", "cosine", "correlation", "density", "partner_density"]],
            preserve_index=False,
        )
        with self._transaction() as con:
            for table in ("comparisons", "feature_matches"):
                con.execute(f"DELETE FROM {table} WHERE model_id = ? AND other_id = ?", [model_id, other_id])
            con.execute(
                "INSERT INTO comparisons (model_id, other_id, figures, seconds, tokens) VALUES (?, ?, ?, ?, ?)",
                [model_id, other_id, json.dumps(figures), float(seconds), int(tokens)],
            )
            insert(
                con,
                rows,
                """INSERT INTO feature_matches SELECT ?, ?, feature, partner, kind, cosine, correlation, density,
                   partner_density FROM incoming""",
                [model_id, other_id],
            )

    def comparison(self, model_id: int, other_id: int) -> tuple[dict, pd.DataFrame] | None:
        """(summary, per-feature matches) of a stored comparison, or None."""
        found = self._frame(
            "SELECT figures, seconds, tokens FROM comparisons WHERE model_id = ? AND other_id = ?", [model_id, other_id]
        )
        if found.empty:
            return None
        row = found.iloc[0]
        figures = dict(json.loads(row["figures"]), seconds=float(row["seconds"]), tokens=int(row["tokens"]))
        matches = self._frame(
            """SELECT feature, partner, kind, cosine, correlation, density, partner_density FROM feature_matches
               WHERE model_id = ? AND other_id = ? ORDER BY feature""",
            [model_id, other_id],
        )
        return figures, matches
