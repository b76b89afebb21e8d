"""The codebook's analysis: per-code statistics of a discrete-latent model (VQ, FSQ, residual VQ),
shaped for the Codebook page's charts and the static site."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentviz import fit, metrics, projection, runs
from latentviz.store import Store, StoreError


@dataclass
class Codebook:
    model_id: int
    name: str
    size: int  # K: codes the quantiser can emit (FSQ: the product of its levels)
    stages: int
    usage: pd.DataFrame  # code, count, rank (1 = most used), dead — over every text of the dataset
    lorenz: pd.DataFrame  # codes, uses: cumulative shares
    gini: float
    held_out: dict  # the figures stored when training ended (held-out texts)
    curves: pd.DataFrame  # step, metric, value: held-out curves during training
    by_label: pd.DataFrame  # code, label, count (empty when the dataset has no labels)
    vectors: pd.DataFrame  # code, x, y, count: codebook vectors in 2-D (PCA), used codes only for FSQ


def codebook(store: Store, model_id: int, stage: int = 0) -> Codebook:
    from latentviz.models import base

    row = store.model(model_id)
    if row is None or row["kind"] != "vq" or row["checkpoint"] is None:
        raise StoreError(f"no finished VQ model with id {model_id}")
    config = runs.from_record(row).model
    size = config.size
    codes = store.codes(model_id, stage=stage)
    counts = np.bincount(codes["code"].to_numpy(), minlength=size)
    order = np.argsort(-counts, kind="stable")
    usage = pd.DataFrame(
        {"code": order, "count": counts[order], "rank": np.arange(1, size + 1), "dead": counts[order] == 0}
    )
    shares_codes, shares_uses = metrics.lorenz(counts)

    by_label = (
        codes.dropna(subset=["label"]).groupby(["code", "label"]).size().rename("count").reset_index()
        if codes["label"].notna().any()
        else pd.DataFrame(columns=["code", "label", "count"])
    )
    return Codebook(
        model_id=model_id,
        name=str(row["name"]),
        size=size,
        stages=config.stage_count,
        usage=usage,
        lorenz=pd.DataFrame({"codes": shares_codes, "uses": shares_uses}),
        gini=metrics.gini(counts),
        held_out=row["metrics"],
        curves=fit.vq.curves(store, model_id),
        by_label=by_label,
        vectors=_vectors_2d(base.load(row["checkpoint"]), counts, stage),
    )


def _vectors_2d(model, counts: np.ndarray, stage: int) -> pd.DataFrame:
    import torch

    quantizer = model.quantizer
    if hasattr(quantizer, "stages"):
        quantizer = quantizer.stages[stage]
    if hasattr(quantizer, "codes_of"):  # FSQ: only the codes in use, the full grid is never built
        ids = np.flatnonzero(counts)
        vectors = quantizer.codes_of(torch.from_numpy(ids)).numpy()
    else:
        ids = np.arange(len(counts))
        vectors = quantizer.codes().detach().numpy()
    if len(ids) < projection.MIN_POINTS:
        return pd.DataFrame(columns=["code", "x", "y", "count"])
    coords, _ = projection.fit(vectors, "pca", projection.default_params("pca"))
    return pd.DataFrame({"code": ids, "x": coords[:, 0], "y": coords[:, 1], "count": counts[ids]})


def examples(store: Store, model_id: int, code: int, stage: int = 0, k: int = 10) -> pd.DataFrame:
    """Texts that received `code` (at any code position), shortest first: they read fastest.
    For a token-level model, the tokens that received it, each with its text."""
    hits = store.codes(model_id, stage=stage, code=code)
    columns = ["id", "text", "label"]
    if hits["token"].notna().any():
        columns = ["token", "id", "text", "label"]
    else:
        hits = hits.drop_duplicates("id")
    return hits.assign(length=hits["text"].str.len()).sort_values("length").head(k)[columns]


def sentence_code_models(store: Store, dataset: str) -> list[int]:
    """The finished VQ models of a dataset with one code per text, not per token (the map colours its
    points by them): one read of the store, which a page run opens for each."""
    rows = fit.common.models(store, "vq", dataset=dataset)
    return [int(r.id) for r in rows.itertuples() if not runs.from_record(_record(r)).tokens]


def _record(row) -> dict:
    return {"kind": row.kind, "config": json.loads(row.config or "{}")}


def code_colours(store: Store, model_id: int, top: int = 15) -> pd.Series:
    """Per text id: 'code N' of its first code position for the `top` most used codes, else 'other codes'."""
    first = store.codes(model_id, stage=0, slot=0).set_index("id")["code"]
    common = set(first.value_counts().index[:top])
    return first.map(lambda c: f"code {c}" if c in common else "other codes")
