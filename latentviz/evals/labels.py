"""Scored feature labels: delphi's embedding scorer (Paulo et al., 2024), offline with MiniLM. A label
is good when, embedded, it sits nearer the texts its feature fires on than texts it does not:

  score = AUROC of cos(embed(label), embed(text)), activating texts (1) against non-activating (0)

The activating texts are the feature's interval examples, which the label was not made from (labels come
from its top examples); as many non-activating texts are drawn from the capture's texts where it never
fired. 0.5 is chance, 1 a label that sorts them perfectly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentviz import backbones, metrics, runs, settings
from latentviz.errors import LatentvizError
from latentviz.progress import Progress, quiet
from latentviz.store import Store

SCORER = "embedding"
EMBEDDER = "minilm"  # the packaged sentence encoder: offline, and what delphi's embedding scorer is built on
PER_SIDE = 10  # activating and non-activating texts per feature, at most
GOOD = 0.8  # a label scoring this or more is counted as good in the summary


def evaluate(store: Store, model_id: int, progress: Progress = quiet, embedder: str = EMBEDDER) -> tuple[dict, int]:
    """Score every labelled feature's label and store the scores with the dashboards: (summary, texts
    embedded). `embedder`: the sentence encoder (tests pass a tiny one)."""
    if not store.has_feature_dashboards(model_id):
        raise LatentvizError(f"SAE {model_id} has no feature dashboards (its labels) yet: build them first")
    row = store.trained_model(model_id, "sae", "SAE")
    capture_id = runs.facts(row).get("capture")
    stats = store.feature_summaries(model_id)
    examples = store.stored_examples(model_id)
    held = examples[examples["bucket"] >= 0].groupby("feature")["text_id"].agg(lambda ids: list(dict.fromkeys(ids)))
    fired = store.feature_texts(model_id).groupby("feature")["text_id"].agg(set)
    pool = store.capture_text_ids(capture_id)
    rng = np.random.default_rng(settings.SEED)
    chosen = {}
    for feature, label in stats[stats["label"] != ""][["feature", "label"]].itertuples(index=False):
        activating = held.get(feature, [])[:PER_SIDE]
        if len(activating) < 2:
            continue
        others = rng.choice(pool, size=min(len(pool), 4 * PER_SIDE), replace=False)
        silent = [t for t in others if t not in fired.get(feature, set())][: len(activating)]
        if len(silent) >= 2:
            chosen[int(feature)] = (label, activating, silent)
    if not chosen:
        raise LatentvizError("no feature has two or more interval examples to score its label on")
    text_ids = sorted({int(t) for _, a, s in chosen.values() for t in (*a, *s)})
    texts = store.texts(row["dataset"]).set_index("id")["text"]
    encoder = backbones.shared(embedder, settings.cache_dir(store.path))
    progress(0, 2, f"embedding {len(text_ids):,} texts")
    text_vectors = dict(zip(text_ids, backbones.encode(encoder, texts.loc[text_ids].tolist()), strict=True))
    progress(1, 2, f"embedding {len(chosen):,} labels")
    label_vectors = backbones.encode(encoder, [label.replace(" · ", ", ") for label, _, _ in chosen.values()])
    scores = [
        metrics.embedding_score(
            vector, np.stack([text_vectors[t] for t in activating]), np.stack([text_vectors[t] for t in silent])
        )
        for vector, (_, activating, silent) in zip(label_vectors, chosen.values(), strict=True)
    ]
    store.set_label_scores(model_id, SCORER, pd.DataFrame({"feature": list(chosen), "score": scores}))
    progress(2, 2, "scored")
    scores = np.asarray(scores)
    return {
        "scorer": f"{SCORER} ({embedder})",
        "mean_score": float(scores.mean()),
        "median_score": float(np.median(scores)),
        "good_share": float((scores >= GOOD).mean()),
        "good_at": GOOD,
        "scored": len(scores),
        "labelled": int((stats["label"] != "").sum()),
    }, len(text_ids) + len(chosen)
