"""What an SAE's features are: their sparse activations over the captured tokens (stored in DuckDB),
per-feature statistics, top and interval examples, logit effects, neighbours and short labels.
Statistics and examples for all features come from a few SQL statements, never a Python loop over
features."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from latentviz import activations, backbones, runs, settings
from latentviz.errors import LatentvizError
from latentviz.store import Store, StoreError

BATCH = 8192


def load_sae(store: Store, model_id: int):
    from latentviz.models import base

    row = store.trained_model(model_id, "sae", "SAE")
    return row, base.load(row["checkpoint"]).eval()


def build(store: Store, model_id: int, progress: Callable[[int, int | None, str], None] | None = None) -> int:
    """Encode every captured token with the SAE and store the non-zero latents; returns the token count."""
    row, sae = load_sae(store, model_id)
    capture_id = runs.facts(row).get("capture")
    if capture_id is None:
        raise StoreError(
            f"SAE {model_id} was imported without activations; capture its layer and train one, or use Text → features"
        )
    tokens = store.capture_tokens(capture_id)
    _, states = activations.load(store, capture_id)
    rows, features, values = [], [], []
    with torch.no_grad():
        for start in range(0, len(states), BATCH):
            f = sae.encode(torch.from_numpy(states[start : start + BATCH]))
            token, feature = torch.nonzero(f, as_tuple=True)
            rows.append(token.numpy() + start)
            features.append(feature.numpy())
            values.append(f[token, feature].numpy())
            if progress:
                progress(min(start + BATCH, len(states)), len(states), "encoding the captured tokens")
    rows = np.concatenate(rows)
    store.set_feature_activations(
        model_id,
        tokens["text_id"].to_numpy()[rows],
        tokens["position"].to_numpy()[rows],
        np.concatenate(features),
        np.concatenate(values),
    )
    return len(states)


def _capture_of(store: Store, model_id: int) -> int:
    """The capture whose tokens the SAE's stored activations belong to."""
    return runs.facts(store.model(model_id))["capture"]


def token_count(store: Store, model_id: int) -> int:
    return int(store.captures().set_index("id").loc[_capture_of(store, model_id), "tokens"])


def statistics(store: Store, model_id: int) -> pd.DataFrame:
    """One row per latent (those that never fired too): feature, fires, density, mean, max, median,
    q90, q99, label."""
    row, sae = load_sae(store, model_id)
    stats = store.feature_stats(model_id, token_count(store, model_id))
    everything = pd.DataFrame({"feature": np.arange(sae.config.d_sae)}).merge(stats, on="feature", how="left")
    everything["fires"] = everything["fires"].fillna(0).astype(int)
    everything["density"] = everything["density"].fillna(0.0)
    return everything.assign(label=everything["feature"].map(labels(store, model_id)).fillna(""))


def labels(store: Store, model_id: int, top: int = 10, words: int = 3) -> dict[int, str]:
    """A short label per feature: its most frequent tokens among its `top` strongest activations."""
    examples = _with_tokens(store, model_id, store.feature_examples(model_id, per_feature=top, buckets=1, per_bucket=0))
    out = {}
    for feature, group in examples[examples["bucket"] == -1].groupby("feature"):
        common = Counter(t.strip() or repr(t) for t in group["token"].fillna("")).most_common(words)
        out[int(feature)] = " · ".join(token for token, _ in common)
    return out


def _with_tokens(store: Store, model_id: int, examples: pd.DataFrame) -> pd.DataFrame:
    tokens = store.capture_tokens(_capture_of(store, model_id))[["text_id", "position", "token"]]
    return examples.merge(tokens, on=["text_id", "position"], how="left")


def examples(
    store: Store, model_id: int, feature: int, per_feature: int = 10, buckets: int = 10, per_bucket: int = 2
) -> pd.DataFrame:
    """The feature's top examples (bucket −1) and interval examples: bucket, value, text_id,
    position, and the example's tokens with this feature's activation on each (a list of pairs)."""
    found = store.feature_examples(model_id, per_feature, buckets, per_bucket, feature=feature)
    text_ids = found["text_id"].unique().tolist()
    tokens = store.text_tokens(
        _capture_of(store, model_id), text_ids
    )  # masked attention sinks included (value 0), so no word runs into the next
    values = store.feature_in_texts(model_id, feature, text_ids).set_index(["text_id", "position"])["value"]
    contexts = []
    for example in found.itertuples():
        text = tokens[tokens["text_id"] == example.text_id]
        contexts.append(
            [
                (t, float(values.get((example.text_id, p), 0.0)))
                for t, p in zip(text["token"], text["position"], strict=True)
            ]
        )
    return found.assign(context=contexts)[["bucket", "value", "text_id", "position", "context"]]


def activation_values(store: Store, model_id: int, feature: int) -> np.ndarray:
    """Every non-zero activation of the feature over the captured tokens (for its histogram)."""
    return store.feature_values(model_id, feature)


def logit_effects(store: Store, model_id: int, feature: int, k: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tokens the feature's decoder direction most promotes and most suppresses when read straight
    through the LM's final norm weight and unembedding: (top, bottom), each token, logit."""
    row, sae = load_sae(store, model_id)
    lm, tokenizer = backbones.causal_lm(row["backbone"], settings.cache_dir(store.path))
    direction = sae.W_dec[feature].detach()
    norm = getattr(getattr(lm, "model", lm), "norm", None)
    if norm is not None and getattr(norm, "weight", None) is not None:
        direction = direction * norm.weight.detach().cpu()
    with torch.no_grad():
        logits = lm.get_output_embeddings().weight.detach().cpu() @ direction
    order = torch.argsort(logits, descending=True)

    def shown(token_id: int) -> str:  # a piece of a multi-byte character decodes to "�": show the vocabulary's own form
        text = tokenizer.decode([token_id])
        return tokenizer.convert_ids_to_tokens(token_id) if "\ufffd" in text else text

    def frame(ids):
        return pd.DataFrame({"token": [shown(int(i)) for i in ids], "logit": logits[ids].numpy()})

    return frame(order[:k]), frame(order[-k:].flip(0))


def nearest_features(store: Store, model_id: int, feature: int, k: int = 10) -> pd.DataFrame:
    """Features whose decoder directions are most cosine-similar: feature, cosine."""
    _, sae = load_sae(store, model_id)
    with torch.no_grad():
        rows = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
        cosine = rows @ rows[feature]
    cosine[feature] = -2.0
    order = torch.argsort(cosine, descending=True)[:k]
    return pd.DataFrame({"feature": order.numpy(), "cosine": cosine[order].numpy()})


def text_features(store: Store, model_id: int, text: str, top: int = 5) -> pd.DataFrame:
    """Which features fire on each token of a new text: position, token, feature, value (top per token)."""
    row, sae = load_sae(store, model_id)
    if not text.strip():
        raise LatentvizError("type some text to see which features fire on it")
    model = backbones.shared(row["backbone"], settings.cache_dir(store.path))
    tokens, hidden = backbones.hidden_states(model, text, sae.config.layer, sae.config.site)
    tokens = [model.tokenizer.convert_tokens_to_string([t]) for t in tokens]
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(hidden))
    f[torch.from_numpy(activations.sink_mask(hidden))] = 0.0  # as in training: attention sinks carry no features
    values, indices = f.topk(min(top, f.shape[1]), dim=1)
    out = pd.DataFrame(
        {
            "position": np.repeat(np.arange(len(tokens)), values.shape[1]),
            "token": np.repeat(tokens, values.shape[1]),
            "feature": indices.flatten().numpy(),
            "value": values.flatten().numpy(),
        }
    )
    return out[out["value"] > 0].reset_index(drop=True)


def steer(
    store: Store, model_id: int, feature: int, prompt: str, strength: float, max_new_tokens: int = 30
) -> tuple[str, str]:
    """Greedy continuations of `prompt` without and with strength·max_activation·(decoder direction)
    added at the SAE's layer and site, at every position: (unsteered, steered)."""
    row, sae = load_sae(store, model_id)
    if not prompt.strip():
        raise LatentvizError("type a prompt to continue")
    lm, tokenizer = backbones.causal_lm(row["backbone"], settings.cache_dir(store.path))
    values = store.feature_values(model_id, feature)
    top = float(values.max()) if len(values) else 1.0  # strength is in units of the feature's largest activation
    direction = (sae.W_dec[feature].detach() / sae.input_scale).to(lm.device) * float(strength) * float(top)
    where = backbones.site_module(backbones.blocks_of(lm), sae.config.layer, sae.config.site)

    def add(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + direction, *output[1:])
        return output + direction

    encoded = tokenizer(prompt, return_tensors="pt").to(lm.device)
    encoded = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
    }  # BERT-style tokenizers add more

    def continue_text() -> str:
        with torch.no_grad():
            out = lm.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        return tokenizer.decode(out[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)

    plain = continue_text()
    handle = where.register_forward_hook(add)
    try:
        steered = continue_text()
    finally:
        handle.remove()
    return plain, steered


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
