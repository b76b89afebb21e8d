"""The bulk build: encode every captured token with the SAE, store the non-zero latents (Parquet shards), and
build every feature's dashboard at once, as SAEDashboard's feature-centric view has it: statistics and
an activation histogram, top and interval examples (each text once), a label from whole words with its
confidence, the tokens its decoder direction most promotes and suppresses (blocked products through the
final norm and the unembedding), its nearest features by decoder cosine (blocked Gram products) and the
features that fire on the same tokens (a sparse product of the stored activations)."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing

import numpy as np
import pandas as pd
import torch

from latentviz import architectures, backbones, engines, runs, settings
from latentviz.features.reads import load_sae
from latentviz.progress import Progress
from latentviz.steps import Engine
from latentviz.store import Store, StoreError
from latentviz.store.arrays import read_states

BATCH = 8192
BLOCK = 512  # features per block of the logit and neighbour products: (512 × vocabulary) floats at a time
LINKS = 10  # promoted, suppressed, nearest and co-occurring features kept per feature
HISTOGRAM_BINS = 40
TOP, BUCKETS, PER_BUCKET = 10, 10, 2  # top examples; interval examples: buckets from 0 to max, per bucket


class FeatureEncoder:
    """The feature-activation step's worker (engines.py): the SAE loaded once, then every token of a
    capture shard encoded; the non-zero latents as (row in the shard, feature, value)."""

    def __init__(self, checkpoint: str):
        from latentviz.models import base

        self.sae = base.load(checkpoint).eval()

    def __call__(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        states = read_states(str(chunk["path"]))
        rows, features, values = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        with torch.no_grad():
            for start in range(0, len(states), BATCH):
                f = self.sae.encode(torch.from_numpy(states[start : start + BATCH]))
                token, feature = torch.nonzero(f, as_tuple=True)
                rows.append(token.numpy() + start)
                features.append(feature.numpy())
                values.append(f[token, feature].numpy())
        return {"rows": np.concatenate(rows), "features": np.concatenate(features), "values": np.concatenate(values)}


def build(store: Store, model_id: int, progress: Progress | None = None, engine: Engine | None = None) -> dict:
    """Encode every captured token with the SAE (on `engine`: this process or a Ray cluster), store
    the non-zero latents and every feature's dashboard. Returns the seconds each part took, and the
    token count."""
    row, sae = load_sae(store, model_id)
    capture_id = runs.facts(row).get("capture")
    if capture_id is None:
        raise StoreError(
            f"SAE {model_id} was imported without activations; capture its layer and train one, or use Text → features"
        )
    seconds, clock = {}, time.perf_counter()

    def part(name: str, step: int) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        if progress:
            progress(step, 6, f"dashboards: {name} done")

    tokens = store.capture_tokens(capture_id)
    shards = store.shards(capture_id)
    if shards.empty:
        raise StoreError(f"capture {capture_id} holds no activations; capture them first")
    starts = np.cumsum(shards["tokens"].to_numpy()) - shards["tokens"].to_numpy()
    chunks = [{"path": np.array(path)} for path in shards["path"]]
    rows, features, values = [], [], []
    with closing(engines.run(FeatureEncoder, (row["checkpoint"],), chunks, engine=engine)) as results:
        for start, count, found in zip(starts, shards["tokens"], results, strict=True):
            rows.append(found["rows"] + start)
            features.append(found["features"])
            values.append(found["values"])
            if progress:
                progress(int(start + count), len(tokens), "encoding the captured tokens with the SAE")
    rows, features = np.concatenate(rows), np.concatenate(features)
    store.set_feature_activations(
        model_id,
        tokens["text_id"].to_numpy()[rows],
        tokens["position"].to_numpy()[rows],
        features,
        np.concatenate(values),
    )
    part("activations", 1)
    d_sae = sae.config.d_sae
    summaries = _summaries(store, model_id, d_sae, len(tokens))
    part("statistics and histograms", 2)
    lm, tokenizer = backbones.causal_lm(row["backbone"], settings.cache_dir(store.path))
    links = [logit_effects(sae, lm, tokenizer)]
    part("logit effects", 3)
    links.append(nearest_features(sae.W_dec.detach()))
    part("neighbours", 4)
    links.append(cooccurring_features(rows, features, len(tokens), d_sae))
    part("co-occurrence", 5)
    store.set_feature_examples(model_id, BUCKETS, TOP, PER_BUCKET)  # chosen in DuckDB as they are stored
    top = store.stored_examples(model_id).query("bucket == -1")
    words = whole_words(store.text_tokens(capture_id, top["text_id"].unique().tolist()), top)
    summaries = summaries.merge(labels(words), on="feature", how="left").fillna({"label": "", "label_confidence": 0.0})
    store.set_feature_dashboards(model_id, summaries, pd.concat(links))
    part("examples and labels", 6)
    return {"tokens": len(tokens), "seconds": seconds}


def _summaries(store: Store, model_id: int, d_sae: int, tokens: int) -> pd.DataFrame:
    """One row per latent, never-fired ones too: statistics and the activation histogram."""
    stats = store.feature_stats(model_id, tokens)
    hist = store.feature_histograms(model_id, HISTOGRAM_BINS)
    counts = np.zeros((d_sae, HISTOGRAM_BINS), dtype=np.int32)
    counts[hist["feature"].to_numpy(), hist["bin"].to_numpy()] = hist["count"].to_numpy()
    out = pd.DataFrame({"feature": np.arange(d_sae)}).merge(stats, on="feature", how="left")
    out["fires"] = out["fires"].fillna(0).astype("int64")
    out["density"] = out["density"].fillna(0.0)
    return out.assign(histogram=list(counts))


def logit_effects(sae, lm, tokenizer, k: int = LINKS) -> pd.DataFrame:
    """For every feature, the tokens its decoder direction most promotes and most suppresses when read
    straight through the LM's final norm and unembedding (architectures.logit_effects), in blocks of features."""
    directions = (sae.W_dec.detach() / sae.input_scale).float().cpu()
    words = word_tokens(tokenizer, lm.get_output_embeddings().weight.shape[0])
    found = []
    with torch.no_grad():
        for start in range(0, len(directions), BLOCK):
            logits = architectures.logit_effects(lm, directions[start : start + BLOCK])
            # over every token, and over whole words only (the first are often sub-word pieces)
            for suffix, allowed in (("", None), ("_words", words)):
                for kind, sign in (("promotes", 1), ("suppresses", -1)):
                    scores = sign * logits
                    if allowed is not None:
                        scores = scores.masked_fill(~allowed, -torch.inf)
                    top = scores.topk(k if allowed is None else min(k, int(allowed.sum())))
                    found.append(_links(start, kind + suffix, top.indices, sign * top.values))
    links = pd.concat(found)
    names = {int(t): _shown(tokenizer, int(t)) for t in links["other"].unique()}
    return links.assign(token=links["other"].map(names))


def word_tokens(tokenizer, vocab: int) -> torch.Tensor:
    """(vocab,) bool: tokens that start a word and are a whole word of letters, at least 2 of them
    ("Ġmarket", "▁market", or a WordPiece "market", not "##et", "ogel" or "||(")."""
    pieces = [str(piece) for piece in tokenizer.convert_ids_to_tokens(list(range(min(vocab, len(tokenizer)))))]
    # byte-level BPE and SentencePiece mark a word's start; WordPiece marks its continuations instead
    wordpiece = not any(piece[:1] in ("Ġ", "▁") for piece in pieces)
    keep = torch.zeros(vocab, dtype=torch.bool)
    for token_id, piece in enumerate(pieces):
        keep[token_id] = is_whole_word(piece, wordpiece)
    return keep


def is_whole_word(piece: str, wordpiece: bool) -> bool:
    """A vocabulary piece that starts a word and is 2 or more letters: "Ġmarket", "▁market", or in a
    WordPiece vocabulary "market" (its continuations are "##et"); not "ĠĠĠ" (runs of spaces, whose
    marker str.isalpha takes for a letter)."""
    markers = ("Ġ", "▁")
    starts = piece[:1] in markers or (wordpiece and not piece.startswith("##"))
    word = piece[1:] if piece[:1] in markers else piece
    return starts and len(word) >= 2 and word.isalpha() and not any(marker in word for marker in markers)


def _shown(tokenizer, token_id: int) -> str:
    """A token as text; a piece of a multi-byte character decodes to "�": show the vocabulary's own form."""
    text = tokenizer.decode([token_id])
    return tokenizer.convert_ids_to_tokens(token_id) if "\ufffd" in text else text


def _links(start: int, kind: str, other: torch.Tensor, score: torch.Tensor) -> pd.DataFrame:
    block, k = other.shape
    return pd.DataFrame(
        {
            "feature": np.repeat(np.arange(start, start + block), k),
            "kind": kind,
            "rank": np.tile(np.arange(1, k + 1), block),
            "other": other.flatten().numpy().astype(np.int64),
            "token": None,
            "score": score.flatten().numpy().astype(np.float64),
        }
    )


def nearest_features(decoder: torch.Tensor, k: int = LINKS) -> pd.DataFrame:
    """Every feature's k nearest by decoder cosine, in blocks of the Gram matrix."""
    rows = decoder / decoder.norm(dim=1, keepdim=True).clamp(min=1e-8)
    found = []
    with torch.no_grad():
        for start in range(0, len(rows), BLOCK):
            cosine = rows[start : start + BLOCK] @ rows.T
            cosine[torch.arange(len(cosine)), torch.arange(start, start + len(cosine))] = -2.0  # not itself
            score, other = cosine.topk(min(k, len(rows) - 1))
            found.append(_links(start, "neighbours", other, score))
    return pd.concat(found)


def cooccurring_features(rows: np.ndarray, features: np.ndarray, tokens: int, d_sae: int, k: int = LINKS):
    """Every feature's k most frequent companions: features firing on the same tokens, counted by
    a sparse product of the (tokens × features) firing matrix with itself."""
    from scipy import sparse

    fired = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, features)), shape=(tokens, d_sae))
    by_feature = fired.tocsc()
    found = []
    for start in range(0, d_sae, BLOCK):  # (block × latents) counts at a time, whatever the width
        together = torch.from_numpy((by_feature[:, start : start + BLOCK].T @ fired).toarray())
        together[torch.arange(len(together)), torch.arange(start, start + len(together))] = 0  # not itself
        score, other = together.topk(min(k, d_sae - 1))
        found.append(_links(start, "cooccurs", other, score))
    links = pd.concat(found)
    return links[links["score"] > 0]


def whole_words(tokens: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """The whole word each example's token sits in (sub-word pieces joined): feature, word."""
    by_text: dict[int, dict[int, str]] = {}
    for text_id, position, token in zip(tokens["text_id"], tokens["position"], tokens["token"].fillna(""), strict=True):
        by_text.setdefault(int(text_id), {})[int(position)] = token
    # Byte-level BPE pieces (SmolLM2, GPT-2) start a word with a space; pieces decoded without them
    # (WordPiece) do not say where words end, so each stays its own word.
    spaced = tokens["token"].fillna("").str.startswith(" ").mean() > 0.2
    words = []
    for feature, text_id, position in examples[["feature", "text_id", "position"]].itertuples(index=False):
        text = by_text.get(int(text_id))
        word = "" if text is None else _word_at(text, int(position)) if spaced else text.get(int(position), "").strip()
        words.append((feature, word))
    return pd.DataFrame(words, columns=["feature", "word"])


def _word_at(tokens: dict[int, str], position: int) -> str:
    """Join the token at `position` with the pieces of the same word around it: a piece continues
    a word when it starts with a letter or digit and no space, after a piece ending in one."""

    def joins(left: str, right: str) -> bool:
        return bool(left) and bool(right) and left[-1].isalnum() and right[0].isalnum()

    start = end = position
    while start - 1 in tokens and joins(tokens[start - 1], tokens[start]):
        start -= 1
    while end + 1 in tokens and joins(tokens[end], tokens[end + 1]):
        end += 1
    return "".join(tokens[p] for p in range(start, end + 1)).strip()


def labels(words: pd.DataFrame, most: int = 3) -> pd.DataFrame:
    """Per feature: the whole words most common among its top examples (case folded, words without a
    letter or digit dropped), and the share of its top examples that carry the first: feature, label,
    label_confidence."""
    out = []
    for feature, group in words.groupby("feature"):
        kept = [w for w in group["word"] if any(c.isalnum() for c in w)]
        counts = Counter(w.lower() for w in kept)
        if not counts:
            continue
        shown = {w.lower(): w for w in reversed(kept)}  # each word in the form seen first
        common = [w for w, n in counts.most_common(most) if n > 1] or [counts.most_common(1)[0][0]]
        out.append((int(feature), " · ".join(shown[w] for w in common), counts[common[0]] / len(group)))
    return pd.DataFrame(out, columns=["feature", "label", "label_confidence"])
