"""Captured LM activations (shards on disk, their tokens here) and an SAE's stored features: sparse
activations, statistics, examples and links, the raw material and the result of a dashboard build."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from latentviz.store.arrays import Arrays
from latentviz.store.connection import insert
from latentviz.store.schema import DASHBOARD_TABLES


class Features(Arrays):
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
            """SELECT c.id, c.dataset, c.backbone, c.layer, c.complete, coalesce(sum(s.rows), 0) AS tokens,
               count(s.shard) AS shards
               FROM captures c LEFT JOIN array_shards s ON s.kind = 'captures' AND s.owner = c.id
               GROUP BY ALL ORDER BY c.id"""
        )

    def add_shard(
        self,
        capture_id: int,
        shard: int,
        name: str,
        tokens: pd.DataFrame,
        masked: pd.DataFrame | None = None,
    ) -> None:
        """Register shard `shard` of a capture, its file `name` written (store/arrays.write_shard: one
        state a row), with its tokens (text_id, position, token: one per row of the file) and the
        tokens it left out (the same columns), in one transaction."""

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
            insert(
                con,
                kept,
                "INSERT INTO capture_tokens SELECT ?, ?, row, text_id, position, token FROM incoming",
                [capture_id, shard],
            )
            if masked is not None and len(masked):
                insert(
                    con,
                    arrow(masked),
                    "INSERT INTO capture_masked SELECT ?, text_id, position, token FROM incoming",
                    [capture_id],
                )
            self.register_shard(con, "captures", capture_id, shard, name, len(tokens))

    def shards(self, capture_id: int) -> pd.DataFrame:
        """shard, path (of its Parquet file) and tokens of each of a capture's shards, in order."""
        shards = self._frame(
            "SELECT shard, path, rows AS tokens FROM array_shards WHERE kind = 'captures' AND owner = ? ORDER BY shard",
            [capture_id],
        )
        return shards.assign(path=[self.array_path(name) for name in shards["path"]])

    def capture_tokens(self, capture_id: int) -> pd.DataFrame:
        """Every kept token in shard order: shard, row, text_id, position, token."""
        return self._frame(
            "SELECT shard, row, text_id, position, token FROM capture_tokens WHERE capture_id = ? ORDER BY shard, row",
            [capture_id],
        )

    def capture_text_ids(self, capture_id: int) -> np.ndarray:
        """The ids of the texts a capture kept tokens of, in order."""
        return self._frame(
            "SELECT DISTINCT text_id FROM capture_tokens WHERE capture_id = ? ORDER BY text_id", [capture_id]
        )["text_id"].to_numpy()

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
        rows = rows.sort_by([("feature", "ascending"), ("text_id", "ascending"), ("position", "ascending")])
        with self.deleting() as doomed, self._transaction() as con:
            for table in DASHBOARD_TABLES:
                con.execute(f"DELETE FROM {table} WHERE model_id = ?", [model_id])
            doomed += self.drop_shards(con, "feature_activations", [model_id])
            self.add_shards(con, "feature_activations", model_id, rows)

    def _activations_frame(self, model_id: int, sql: str, params: dict | None = None) -> pd.DataFrame:
        """`sql`, where `$activations` stands for the relation reading this model's activation shards in place."""
        with self._connect() as con:
            relation, shards = self.shard_relation(con, "feature_activations", model_id)
            return con.execute(sql.replace("$activations", relation), (params or {}) | shards).df()

    def feature_stats(self, model_id: int, tokens: int) -> pd.DataFrame:
        """Per feature that fired: firing count and density (over `tokens`), mean, max and quantiles."""
        return self._activations_frame(
            model_id,
            """SELECT feature, count(*) AS fires, count(*) / $tokens::DOUBLE AS density, avg(value) AS mean,
                      max(value) AS max, quantile_cont(value, 0.5) AS median, quantile_cont(value, 0.9) AS q90,
                      quantile_cont(value, 0.99) AS q99
               FROM $activations GROUP BY feature ORDER BY feature""",
            {"tokens": tokens},
        )

    def feature_histograms(self, model_id: int, bins: int) -> pd.DataFrame:
        """Every feature's activation counts in `bins` equal intervals from 0 to its max: feature, bin, count."""
        return self._activations_frame(
            model_id,
            """WITH a AS (SELECT feature, value, max(value) OVER (PARTITION BY feature) AS top FROM $activations)
               SELECT feature, least(CAST(floor(value / top * $bins) AS INTEGER), $bins - 1) AS bin, count(*) AS count
               FROM a GROUP BY ALL ORDER BY feature, bin""",
            {"bins": bins},
        )

    _EXAMPLES = """WITH a AS (
               SELECT text_id, position, feature, value, max(value) OVER (PARTITION BY feature) AS top
               FROM $activations),
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
            relation, shards = self.shard_relation(con, "feature_activations", model_id)
            examples = self._EXAMPLES.replace("$activations", relation)
            con.execute(  # in feature order, so a feature's rows sit together and lookups skip the rest
                f"INSERT INTO feature_examples SELECT $model, * FROM ({examples}) ORDER BY feature, bucket, rank",
                {"model": model_id, "buckets": buckets, "top": per_feature, "per_bucket": per_bucket} | shards,
            )
            con.execute(
                f"""INSERT INTO feature_example_values
                   SELECT $model, a.feature, a.text_id, a.position, a.value FROM {relation} a
                   SEMI JOIN feature_examples e ON e.model_id = $model AND e.feature = a.feature
                       AND e.text_id = a.text_id
                   ORDER BY a.feature, a.text_id, a.position""",
                {"model": model_id} | shards,
            )

    def set_feature_dashboards(self, model_id: int, summaries: pd.DataFrame, links: pd.DataFrame) -> None:
        """Store every feature's summary row and links, replacing any earlier build; written last,
        so a model has dashboards only once every part is in."""
        summaries = pa.Table.from_pandas(summaries, preserve_index=False)
        links = pa.Table.from_pandas(links, preserve_index=False)
        with self._transaction() as con:
            for table in ("feature_summaries", "feature_links"):
                con.execute(f"DELETE FROM {table} WHERE model_id = ?", [model_id])
            insert(
                con,
                summaries,
                """INSERT INTO feature_summaries SELECT ?, feature, fires, density, mean, max, median, q90, q99,
                   label, label_confidence, histogram FROM incoming""",
                [model_id],
            )
            insert(
                con,
                links,
                """INSERT INTO feature_links SELECT ?, feature, kind, rank, other, token, score FROM incoming
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

    def has_feature_dashboards(self, model_id: int) -> bool:
        return self._has_rows("feature_summaries", model_id)

    def feature_summaries(self, model_id: int) -> pd.DataFrame:
        """Every feature's summary, with its label's embedding score where it has one (NaN otherwise)."""
        return self._frame(
            """SELECT s.feature, fires, density, mean, max, median, q90, q99, label, label_confidence, histogram,
                      l.score AS label_score
               FROM feature_summaries s
               LEFT JOIN feature_label_scores l ON l.model_id = s.model_id AND l.feature = s.feature
                                               AND l.scorer = 'embedding'
               WHERE s.model_id = ? ORDER BY s.feature""",
            [model_id],
        )

    def feature_texts(self, model_id: int) -> pd.DataFrame:
        """(feature, text_id): every text each feature fired in."""
        return self._activations_frame(
            model_id, "SELECT DISTINCT feature, text_id FROM $activations ORDER BY feature, text_id"
        )

    def set_label_scores(self, model_id: int, scorer: str, scores: pd.DataFrame) -> None:
        """Store (replacing) one scorer's score of each feature's label: scores has feature, score."""
        rows = pa.Table.from_pandas(scores[["feature", "score"]], preserve_index=False)
        with self._transaction() as con:
            con.execute("DELETE FROM feature_label_scores WHERE model_id = ? AND scorer = ?", [model_id, scorer])
            insert(
                con,
                rows,
                "INSERT INTO feature_label_scores SELECT ?, feature, ?, score FROM incoming",
                [model_id, scorer],
            )

    def label_scores(self, model_id: int) -> pd.DataFrame:
        """Every score of this SAE's labels: feature, scorer, score."""
        return self._frame(
            "SELECT feature, scorer, score FROM feature_label_scores WHERE model_id = ? ORDER BY scorer, feature",
            [model_id],
        )

    def set_explanations(self, model_id: int, explainer: str, found: pd.DataFrame) -> None:
        """Store (replacing all of this SAE's) LLM explanations: found has feature, explanation and a column
        per score (detection, detection_auroc, fuzzing, fuzzing_auroc, embedding)."""
        columns = ["feature", "explanation", "detection", "detection_auroc", "fuzzing", "fuzzing_auroc", "embedding"]
        rows = pa.Table.from_pandas(found.reindex(columns=columns), preserve_index=False)
        with self._transaction() as con:
            con.execute("DELETE FROM feature_explanations WHERE model_id = ?", [model_id])
            if len(found):
                insert(
                    con,
                    rows,
                    """INSERT INTO feature_explanations SELECT ?, feature, ?, explanation, detection, detection_auroc,
                           fuzzing, fuzzing_auroc, embedding FROM incoming""",
                    [model_id, explainer],
                )

    def explanations(self, model_id: int) -> pd.DataFrame:
        """This SAE's LLM explanations: feature, explainer, explanation and its scores."""
        return self._frame(
            """SELECT feature, explainer, explanation, detection, detection_auroc, fuzzing, fuzzing_auroc, embedding
               FROM feature_explanations WHERE model_id = ? ORDER BY feature""",
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
        with self._connect() as con:
            return bool(
                con.execute(
                    "SELECT count(*) > 0 FROM array_shards WHERE kind = 'feature_activations' AND owner = ?",
                    [model_id],
                ).fetchone()[0]
            )

    def feature_values(self, model_id: int, feature: int) -> np.ndarray:
        frame = self._activations_frame(
            model_id, "SELECT value FROM $activations WHERE feature = $feature", {"feature": feature}
        )
        return frame["value"].to_numpy()

    def feature_in_texts(self, model_id: int, feature: int, text_ids: list[int]) -> pd.DataFrame:
        """text_id, position, value of one feature's activations in the given texts."""
        return self._activations_frame(
            model_id,
            """SELECT text_id, position, value FROM $activations
               WHERE feature = $feature AND list_contains($texts::BIGINT[], text_id)""",
            {"feature": feature, "texts": [int(t) for t in text_ids]},
        )
