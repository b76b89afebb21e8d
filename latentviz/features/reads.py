"""What the pages and the static site read of a built SAE: per-feature statistics, the feature a
dashboard opens on, one feature's dashboard, its histogram, and the map of decoder directions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentviz.store import Store, StoreError

OPENING_DENSITY = (1e-4, 1e-2)  # the feature a dashboard opens on comes from this middle range of densities


def load_sae(store: Store, model_id: int):
    from latentviz.models import base

    row = store.trained_model(model_id, "sae", "SAE")
    return row, base.load(row["checkpoint"]).eval()


def statistics(store: Store, model_id: int) -> pd.DataFrame:
    """One row per latent (those that never fired too): feature, fires, density, mean, max, median,
    q90, q99, label, label_confidence, histogram."""
    if not store.has_feature_dashboards(model_id):
        raise StoreError(f"SAE {model_id}'s feature dashboards are not built yet; build them first")
    return store.feature_summaries(model_id)


def best_labelled(stats: pd.DataFrame, count: int) -> pd.DataFrame:
    """The best-labelled features of middle density (the densest are commas and "the", the rarest
    fire a handful of times), function words left out: by label score where scored (latentviz eval),
    then label confidence, nearest 1e-3 in density on ties; any that fired when none is there."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    low, high = OPENING_DENSITY
    middle = stats[(stats["density"] >= low) & (stats["density"] <= high) & (stats["label"] != "")]
    first_word = middle["label"].str.split(" · ").str[0].str.lower()
    content = middle[~first_word.isin(ENGLISH_STOP_WORDS) & first_word.str.contains(r"[a-z]", regex=True)]
    pool = content if len(content) else middle if len(middle) else stats[stats["fires"] > 0]
    middling = (np.log10(pool["density"].clip(lower=1e-12)) + 3).abs()
    # a label's embedding score (latentviz eval), where it has one, ranks before its confidence
    score = pool["label_score"].fillna(-1.0) if "label_score" in pool else 0.0
    return (
        pool.assign(_middling=middling, _score=score)
        .sort_values(["_score", "label_confidence", "_middling"], ascending=[False, False, True])
        .head(count)
        .drop(columns=["_middling", "_score"])
    )


def filtered(stats: pd.DataFrame, min_density: float = 0.0, label: str = "") -> pd.DataFrame:
    """The features that fired at `min_density` or more whose label contains `label` (any case)."""
    shown = stats[(stats["density"] >= min_density) & (stats["fires"] > 0)]
    return shown[shown["label"].str.contains(label, case=False, regex=False)] if label else shown


def opening_feature(stats: pd.DataFrame) -> int:
    """The feature a dashboard opens on: the best labelled (see best_labelled)."""
    best = best_labelled(stats, 1)
    if best.empty:
        return int(stats["feature"].iloc[0]) if len(stats) else 0
    return int(best.iloc[0]["feature"])


@dataclass
class Dashboard:
    """One feature's stored dashboard, read in one go."""

    examples: pd.DataFrame  # bucket (−1 = top), value, text_id, position, context: [(token, activation)]
    links: dict[str, pd.DataFrame]  # promotes, suppresses (token, logit); neighbours (feature, cosine);


def dashboard(store: Store, model_id: int, capture_id: int, feature: int) -> Dashboard:
    """The feature's stored examples, with every token of their texts shaded by its activation
    (masked attention sinks included, at 0, so no word runs into the next), and its links."""
    found, tokens, links = store.feature_dashboard(model_id, capture_id, feature)
    by_text = {
        text_id: list(zip(group["token"].fillna(""), group["value"].astype(float), strict=True))
        for text_id, group in tokens.groupby("text_id", sort=False)
    }
    contexts = [by_text.get(text_id, []) for text_id in found["text_id"]]
    return Dashboard(
        found.assign(context=contexts)[["bucket", "value", "text_id", "position", "context"]], _by_kind(links)
    )


def _by_kind(found: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for kind, score in (
        ("promotes", "logit"),
        ("suppresses", "logit"),
        ("promotes_words", "logit"),  # empty for dashboards built before these were kept
        ("suppresses_words", "logit"),
        ("neighbours", "cosine"),
        ("cooccurs", "tokens"),
    ):
        part = found[found["kind"] == kind]
        first = ("token", part["token"]) if score == "logit" else ("feature", part["other"])
        out[kind] = pd.DataFrame({first[0]: first[1].to_numpy(), score: part["score"].to_numpy()})
    out["cooccurs"]["tokens"] = out["cooccurs"]["tokens"].astype(int)
    return out


def feature_record(store: Store, model_id: int, feature: int, stats: pd.DataFrame | None = None) -> dict:
    """One feature's dashboard as plain JSON (the static site's file, `latentviz feature --json`): its
    statistics and label, top and interval examples with every token's activation, its histogram, and
    its links (neighbours and co-occurring features with their labels)."""
    from latentviz import runs

    stats = statistics(store, model_id) if stats is None else stats
    by_feature = stats.set_index("feature")
    if feature not in by_feature.index:
        raise StoreError(f"SAE {model_id} has features 0..{len(stats) - 1}; there is no feature {feature}")
    row = by_feature.loc[feature]
    shown = dashboard(store, model_id, runs.facts(store.model(model_id))["capture"], feature)
    links = {kind: frame.to_dict("split")["data"] for kind, frame in shown.links.items()}  # native numbers
    for kind in ("neighbours", "cooccurs"):  # with the other feature's label
        links[kind] = [[*item, str(by_feature.at[int(item[0]), "label"])] for item in links[kind]]
    bins = histogram(row)
    return {
        "model": model_id,
        "feature": feature,
        "label": str(row["label"] or ""),
        "label_confidence": float(row["label_confidence"]),
        **{name: float(row[name]) for name in ("density", "fires", "mean", "max")},
        "examples": [
            {
                "bucket": int(e.bucket),
                "value": float(e.value),
                "text_id": int(e.text_id),
                "tokens": [[t, round(v, 3)] for t, v in e.context],
            }
            for e in shown.examples.itertuples()
        ],
        "histogram": {"start": bins["start"].tolist(), "count": bins["count"].tolist()},
        "links": links,
    }


def histogram(stats_row) -> pd.DataFrame:
    """A feature's stored activation histogram: bin start, bin end, count."""
    counts = np.asarray(stats_row["histogram"], dtype=int)
    edges = np.linspace(0, float(stats_row["max"] or 0.0), len(counts) + 1)
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts})


def feature_map(store: Store, model_id: int, stats: pd.DataFrame) -> pd.DataFrame:
    """Every feature placed by a UMAP (cosine) of its decoder direction: feature, x, y, log10 density, label."""
    from latentviz import projection

    _, sae = load_sae(store, model_id)
    coords, _ = projection.fit(sae.W_dec.detach().numpy(), "umap", projection.default_params("umap"))
    density = stats.set_index("feature").loc[np.arange(len(coords))]
    return pd.DataFrame(
        {
            "feature": np.arange(len(coords)),
            "x": coords[:, 0],
            "y": coords[:, 1],
            "log10_density": np.log10(density["density"].to_numpy().clip(min=1e-7)),
            "label": density["label"].to_numpy(),
        }
    )
