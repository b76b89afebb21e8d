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
    def __init__(self, ids: np.ndarray, vectors: np.ndarray, *, copy: bool = True):
        """`copy=False` hands the index `vectors` (as the store reads them: float32, in id order) to be
        made unit length where they lie: no second matrix in memory (300 MB at 200,000 MiniLM vectors)."""
        self.ids, unit = np.asarray(ids), np.asarray(vectors, np.float32)
        if np.any(self.ids[1:] < self.ids[:-1]):  # sorted ids: a text's row by binary search
            order = np.argsort(self.ids, kind="stable")
            self.ids, unit = self.ids[order], unit[order]  # copies
        elif copy or not unit.flags.writeable:
            unit = unit.copy()
        unit /= np.maximum(np.sqrt(np.einsum("ij,ij->i", unit, unit)), 1e-12)[:, None]  # in place: one matrix
        self.unit = unit

    @classmethod
    def of_encoding(cls, store, encoding_id: int) -> CosineIndex:
        """An encoding's vectors as the store reads them, made unit length without a second copy."""
        return cls(*store.vectors(encoding_id), copy=False)

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
