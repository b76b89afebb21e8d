"""What the three families' training orchestration shares: the held-out split, the model rows a
run writes and reads back, finished and unfinished runs, and their curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentviz import runs, settings
from latentviz.store import Store, StoreError

HELD_OUT = 0.1  # share of texts kept out of training for the held-out figures


def split_ids(n: int, seed: int = settings.SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of n texts, fixed by the seed."""
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * HELD_OUT)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def validation_split(n: int, seed: int = settings.SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, validation rows, held-out rows) of n texts: the held-out rows as split_ids gives
    them, only ever reported on, and as many validation rows from the rest, for choosing a checkpoint."""
    rest, held = split_ids(n, seed)
    order = np.random.default_rng(seed + 1).permutation(rest)
    cut = max(1, int(round(n * HELD_OUT)))
    return np.sort(order[cut:]), np.sort(order[:cut]), held


def held_out_split(text_ids: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of rows labelled by text, holding out whole texts so that no
    text's tokens sit on both sides (sentence-level rows are one per text: the plain split)."""
    texts = np.unique(text_ids)
    _, held_texts = split_ids(len(texts), seed)
    held = np.isin(text_ids, texts[held_texts])
    return np.flatnonzero(~held), np.flatnonzero(held)


def add_run(store: Store, kind: str, name: str, backbone: str, run, **data) -> int:
    """A model row for a run that is about to train (its checkpoint is set when it finishes)."""
    return store.add_model(kind, name, run.dataset, backbone, runs.to_record(run, **data))


def run_of(store: Store, model_id: int, kind: str, *, unfinished: bool = False) -> tuple[dict, object]:
    """(row, run spec) of a model of this kind; with `unfinished`, one that started and has not finished."""
    row = store.model(model_id)
    if row is None or row["kind"] != kind:
        raise StoreError(f"no {kind.upper()} model with id {model_id}")
    if unfinished and row["checkpoint"] is not None:
        raise StoreError(f"{kind.upper()} model {model_id} has finished training; nothing to resume")
    return row, runs.from_record(row)


def models(store: Store, kind: str, *, finished: bool = True, dataset: str | None = None) -> pd.DataFrame:
    """Model rows of a kind, newest last: finished ones (with a checkpoint) or unfinished ones
    (training now, stopped or interrupted)."""
    rows = store.models()
    rows = rows[(rows["kind"] == kind) & (rows["checkpoint"].notna() == finished)]
    return rows if dataset is None else rows[rows["dataset"] == dataset]


def curves(store: Store, model_id: int, names: dict[str, str]) -> pd.DataFrame:
    """step, metric, value: the held-out figures recorded during training, named for people."""
    rows = store.training_metrics(model_id)
    rows = rows[rows["name"].isin(list(names))]
    return rows.assign(metric=rows["name"].map(names))[["step", "metric", "value"]]
