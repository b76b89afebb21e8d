"""Exact cosine nearest neighbours, answered from memory: the one neighbour search of the map, for a
click on a stored text and for a placed new one.

A unit-length matrix in memory answers in milliseconds where a query over every stored vector in
DuckDB takes about 0.2 s at 50,000 texts, for 4 bytes per value (77 MB for 50,000 MiniLM vectors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentviz.errors import LatentvizError


class CosineIndex:
    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        order = np.argsort(ids, kind="stable")  # sorted ids: a text's row by binary search
        self.ids = np.asarray(ids)[order]
        unit = np.asarray(vectors, np.float32)[order]  # a copy, made unit length in place: one matrix
        unit /= np.maximum(np.sqrt(np.einsum("ij,ij->i", unit, unit)), 1e-12)[:, None]  # in memory, not three
        self.unit = unit

    def _row(self, text_id: int) -> int:
        row = int(np.searchsorted(self.ids, text_id))
        if row >= len(self.ids) or self.ids[row] != text_id:
            raise LatentvizError(f"text {text_id} is not in this encoding")
        return row

    def nearest(self, vector: np.ndarray, k: int, exclude_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosine similarities) of the k texts most like `vector`, best first."""
        vector = np.asarray(vector, np.float32)
        similarity = self.unit @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        if exclude_row is not None:
            similarity[exclude_row] = -np.inf
        k = min(k, len(self.ids) - (exclude_row is not None))
        top = np.argpartition(-similarity, k - 1)[:k] if k > 0 else np.array([], int)
        best = top[np.argsort(-similarity[top], kind="stable")]
        return self.ids[best], similarity[best]

    def nearest_to_text(self, text_id: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosine similarities) of the k texts most like this one, itself left out, best first."""
        row = self._row(text_id)
        return self.nearest(self.unit[row], k, exclude_row=row)

    def rows_of(self, text_ids: np.ndarray) -> np.ndarray:
        """The unit vectors of these texts, in their order."""
        return self.unit[np.searchsorted(self.ids, np.asarray(text_ids))]

    def table(self, points: pd.DataFrame, ids: np.ndarray, similarity: np.ndarray) -> pd.DataFrame:
        """The map's table of neighbours: id, text, label, similarity, x, y from `points`."""
        rows = points.iloc[pd.Index(points["id"]).get_indexer(ids)]  # k rows taken, not the whole map re-indexed
        return rows.reset_index(drop=True).assign(similarity=similarity.astype(float))[
            ["id", "text", "label", "similarity", "x", "y"]
        ]

    def neighbours(self, points: pd.DataFrame, text_id: int, k: int = 10) -> pd.DataFrame:
        """The map's table of a stored text's neighbours (see `table`)."""
        return self.table(points, *self.nearest_to_text(text_id, k))
