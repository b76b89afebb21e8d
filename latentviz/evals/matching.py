"""SAE ↔ SAE matching: which features of one SAE another also learnt. Features are paired one to one by
Hungarian matching on decoder cosine (and, over the same tokens, on the activation correlation of the
latents that fired there); PW-MCC is the mean similarity of the pairs (Song et al., 2025). Each feature
of the first SAE is then classed:

  matched    its partner's decoder cosine is at least the threshold
  split      not matched, and two or more features of the second have cosine ≥ SPLIT_COSINE with it (one
             to many: the second SAE cut it into parts)
  absorbed   not matched, and its closest feature in the second (cosine ≥ SPLIT_COSINE) is the match of
             another feature of the first (many to one: the second holds it inside another feature)
  unmatched  the rest
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from latentviz import activations, metrics, runs, settings
from latentviz.errors import LatentvizError
from latentviz.features.reads import OPENING_DENSITY, load_sae
from latentviz.progress import Progress, quiet
from latentviz.steps import Compare
from latentviz.store import Store

# A direction cut evenly into two or three orthogonal parts has cosine 0.71 or 0.58 with each part.
SPLIT_COSINE = 0.5
KINDS = ("matched", "split", "absorbed", "unmatched")


def compare(store: Store, spec: Compare, progress: Progress = quiet) -> tuple[dict, pd.DataFrame]:
    """Match SAE `spec.a`'s features to SAE `spec.b`'s and store the result: (summary, one row per
    feature of A: feature, partner, kind, cosine, correlation, density, partner_density)."""
    started = time.perf_counter()
    (row_a, sae_a), (row_b, sae_b) = load_sae(store, spec.a), load_sae(store, spec.b)
    if spec.a == spec.b:
        raise LatentvizError("pick two different SAEs to compare")
    if row_a["backbone"] != row_b["backbone"] or sae_a.config.d_in != sae_b.config.d_in:
        raise LatentvizError(
            f"SAE {spec.a} reads {row_a['backbone']} ({sae_a.config.d_in} dims) and SAE {spec.b} reads "
            f"{row_b['backbone']} ({sae_b.config.d_in} dims): compare SAEs on the same LM"
        )
    progress(0, 3, "decoder cosine and its matching")
    cosine = metrics.cosine_matrix(_decoder(sae_a), _decoder(sae_b))
    tokens, f_a, f_b = _shared_activations(store, (row_a, sae_a), (row_b, sae_b), spec.tokens, progress)
    correlation = None if f_a is None else metrics.correlation_matrix(f_a, f_b)
    progress(2, 3, "classing every feature")
    density_a = None if f_a is None else (f_a > 0).mean(0)
    density_b = None if f_b is None else (f_b > 0).mean(0)
    features = classify(cosine, spec.threshold, correlation, density_a, density_b)
    counts = features["kind"].value_counts()
    summary = {
        "pw_mcc_decoder": metrics.pairwise_mcc(cosine),
        "pw_mcc_activations": None if correlation is None else _alive_mcc(correlation, density_a, density_b),
        "threshold": spec.threshold,
        "split_cosine": SPLIT_COSINE,
        "d_sae": [sae_a.config.d_sae, sae_b.config.d_sae],
        **{kind: int(counts.get(kind, 0)) for kind in KINDS},
        "matched_share": float(counts.get("matched", 0) / len(features)),
        "correlation_tokens": tokens,
    }
    seconds = time.perf_counter() - started
    store.set_comparison(spec.a, spec.b, summary, features, seconds, tokens)
    progress(3, 3, "stored")
    return dict(summary, seconds=seconds, tokens=tokens), features


def classify(
    cosine: np.ndarray,
    threshold: float,
    correlation: np.ndarray | None = None,
    density: np.ndarray | None = None,
    partner_density: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per feature of A (the rows of `cosine`, A × B decoder cosines), classed as the module
    docstring says; its partner is its Hungarian match when matched, else its closest feature in B."""
    rows, columns = metrics.matching(cosine)
    hungarian = np.full(len(cosine), -1)
    hungarian[rows] = columns
    closest = cosine.argmax(1)
    matched = (hungarian >= 0) & (cosine[np.arange(len(cosine)), np.maximum(hungarian, 0)] >= threshold)
    partner = np.where(matched, hungarian, closest)
    taken = np.zeros(cosine.shape[1], bool)  # features of B that are another feature's match
    taken[hungarian[matched]] = True
    parts = (cosine >= SPLIT_COSINE).sum(1)
    near = cosine[np.arange(len(cosine)), closest] >= SPLIT_COSINE
    kind = np.select(
        [matched, parts >= 2, near & taken[closest]], ["matched", "split", "absorbed"], default="unmatched"
    )
    index = np.arange(len(cosine))
    return pd.DataFrame(
        {
            "feature": index,
            "partner": partner,
            "kind": kind,
            "cosine": cosine[index, partner],
            "correlation": np.nan if correlation is None else correlation[index, partner],
            "density": np.nan if density is None else density,
            "partner_density": np.nan if partner_density is None else partner_density[partner],
        }
    )


def opening_pair(matches: pd.DataFrame) -> int:
    """The feature the Compare page opens on: the best-matched one of middle density (as a dashboard
    opens: the densest fire on almost every token), else the best-matched, else the first."""
    low, high = OPENING_DENSITY
    matched = matches[matches["kind"] == "matched"]
    middle = matched[matched["density"].between(low, high)]
    pool = middle if len(middle) else matched if len(matched) else matches
    return int(pool.sort_values("cosine", ascending=False)["feature"].iloc[0])


def _alive_mcc(correlation, density_a, density_b) -> float | None:
    """PW-MCC on activation correlation over the latents that fired on the shared tokens: a silent
    latent has no activity to correlate (it would pair at 0 and count dead latents as disagreement)."""
    alive_a, alive_b = density_a > 0, density_b > 0
    if not alive_a.any() or not alive_b.any():
        return None
    return metrics.pairwise_mcc(correlation[np.ix_(alive_a, alive_b)])


def _decoder(sae) -> np.ndarray:
    return sae.W_dec.detach().double().numpy()


def _capture_of(store: Store, row: dict, sae) -> int | None:
    """The capture an SAE trained on, or else a complete one of its LM, layer and site."""
    own = runs.facts(row).get("capture")
    if own is not None:
        return int(own)
    for capture_id in store.captures().query("complete")["id"]:
        found = store.capture(int(capture_id))
        if (
            found["backbone"] == row["backbone"]
            and int(found["layer"]) == sae.config.layer
            and found["params"].get("hook", "resid_post") == sae.config.site
        ):
            return int(capture_id)
    return None


def _shared_activations(store: Store, a, b, tokens: int, progress: Progress):
    """(tokens used, A's latents, B's latents) on the same tokens: each SAE reads its own capture (the
    same one when they read the same layer and site), joined on (text, position); (0, None, None) when
    either has none."""
    (row_a, sae_a), (row_b, sae_b) = a, b
    captures = _capture_of(store, row_a, sae_a), _capture_of(store, row_b, sae_b)
    if None in captures:
        return 0, None, None
    progress(1, 3, f"both SAEs on up to {tokens:,} shared tokens")
    a_rows, b_rows = (
        store.capture_tokens(capture_id)[["text_id", "position"]].reset_index(names="row") for capture_id in captures
    )
    joined = a_rows.merge(b_rows, on=["text_id", "position"], suffixes=("_a", "_b"))
    if joined.empty:
        return 0, None, None
    chosen = np.sort(np.random.default_rng(settings.SEED).permutation(len(joined))[:tokens])
    joined = joined.iloc[chosen]
    latents, states = [], {capture_id: activations.load(store, capture_id)[1] for capture_id in set(captures)}
    for capture_id, sae, rows in ((captures[0], sae_a, joined["row_a"]), (captures[1], sae_b, joined["row_b"])):
        with torch.no_grad():
            latents.append(sae.encode(torch.from_numpy(states[capture_id][rows.to_numpy()])).numpy())
    return len(joined), latents[0], latents[1]
