"""What the pages and the static site read of a built SAE: per-feature statistics, the feature a
dashboard opens on, one feature's dashboard, its histogram, and the map of every feature."""

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
    first_words = (label.split(" · ")[0].lower() for label in middle["label"])  # 6x quicker than .str methods
    content = middle[[word not in ENGLISH_STOP_WORDS and any("a" <= c <= "z" for c in word) for word in first_words]]
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


MAP_PLACEMENTS = ("texts", "decoder")  # what places a feature on the map; the first is the page's default
MAP_TEXT_DIMENSIONS = 50  # the feature-by-text matrix is reduced to this many before UMAP
TOPIC_SHARE = 0.4  # a feature's topic: the label of at least this share of the texts it fires in, else "mixed"


def feature_map(store: Store, model_id: int, stats: pd.DataFrame, place_by: str = MAP_PLACEMENTS[0]) -> pd.DataFrame:
    """Every feature on a 2-D map: feature, x, y, log10 density, label and topic. Placed by the texts it
    fires in (UMAP, cosine, of its idf-weighted feature-by-text incidence: features of the same texts sit
    together; only features that fired) or by its decoder direction (UMAP, cosine; every feature). An
    SAE's decoder directions are nearly orthogonal after a short run, so their map is a round cloud;
    the texts a feature fires in carry the corpus's topics. Topic: the dataset label that at least
    TOPIC_SHARE of its texts carry ("mixed" otherwise; empty where the dataset has no labels)."""
    from latentviz import projection

    if place_by not in MAP_PLACEMENTS:
        raise ValueError(f"place_by must be one of {MAP_PLACEMENTS}")
    row, sae = load_sae(store, model_id)
    incidence, text_ids = _feature_texts(store, model_id, sae.config.d_sae)
    if place_by == "decoder":
        placed = np.arange(sae.config.d_sae)
        vectors = sae.W_dec.detach().numpy()
    else:
        from sklearn.decomposition import TruncatedSVD

        placed = np.flatnonzero(incidence.getnnz(axis=1))
        in_texts = np.asarray((incidence > 0).sum(axis=0)).ravel()
        weighted = incidence[placed].multiply(np.log(len(text_ids) / (1 + in_texts))[None, :]).tocsr()
        dimensions = min(MAP_TEXT_DIMENSIONS, min(weighted.shape) - 1)
        vectors = TruncatedSVD(dimensions, random_state=0).fit_transform(weighted)
    coords, _ = projection.fit(vectors, "umap", projection.default_params("umap"))
    found = stats.set_index("feature").loc[placed]
    return pd.DataFrame(
        {
            "feature": placed,
            "x": coords[:, 0],
            "y": coords[:, 1],
            "log10_density": np.log10(found["density"].to_numpy().clip(min=1e-7)),
            "label": found["label"].to_numpy(),
            "topic": _topics(store, row["dataset"], incidence, text_ids)[placed],
        }
    )


def _feature_texts(store: Store, model_id: int, d_sae: int):
    """(features × texts incidence matrix, sparse; the texts' ids) of every text each feature fired in."""
    import scipy.sparse

    pairs = store.feature_texts(model_id)
    text_ids, columns = np.unique(pairs["text_id"].to_numpy(), return_inverse=True)
    incidence = scipy.sparse.csr_matrix(
        (np.ones(len(pairs), np.float32), (pairs["feature"].to_numpy(), columns)), shape=(d_sae, len(text_ids))
    )
    return incidence, text_ids


def _topics(store: Store, dataset: str, incidence, text_ids: np.ndarray) -> np.ndarray:
    """Per feature, the label most of its texts carry (see feature_map); empty without labels."""
    import scipy.sparse

    labels = store.texts(dataset).set_index("id")["label"].reindex(text_ids) if dataset else None
    if labels is None or labels.isna().all():
        return np.full(incidence.shape[0], "", dtype=object)
    names, codes = np.unique(labels.fillna("").astype(str).to_numpy(), return_inverse=True)
    one_hot = scipy.sparse.csr_matrix(
        (np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), len(names))
    )
    counts = np.asarray((incidence @ one_hot).todense())
    share = counts.max(axis=1) / np.maximum(1, counts.sum(axis=1))
    topic = names[counts.argmax(axis=1)].astype(object)
    topic[share < TOPIC_SHARE] = "mixed"
    topic[counts.sum(axis=1) == 0] = "never fired"
    return topic
