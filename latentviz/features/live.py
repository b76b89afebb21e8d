"""Live LM runs with an SAE: which features fire on a new text, and steering a continuation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from latentviz import activations, backbones, corpus, runs, settings
from latentviz.errors import LatentvizError
from latentviz.features.reads import load_sae
from latentviz.steps import STEER
from latentviz.store import Store


def text_activations(store: Store, model_id: int, text: str) -> tuple[list[str], np.ndarray]:
    """A new text's tokens and the SAE's activations on each (tokens × latents); special tokens (BOS
    and the like) and attention sinks carry none, as in training."""
    row, sae = load_sae(store, model_id)
    if not text.strip():
        raise LatentvizError("type some text to see which features fire on it")
    corpus.check_length(text, "text")
    return _read(store, row, sae, text)


def _read(store: Store, row: dict, sae, text: str) -> tuple[list[str], np.ndarray]:
    """text_activations for an SAE already loaded."""
    model = backbones.shared(row["backbone"], settings.cache_dir(store.path))
    prepend_bos = runs.from_record(row).prepend_bos
    tokens, hidden = backbones.hidden_states(model, text, sae.config.layer, sae.config.site, prepend_bos)
    read = ~np.isin(tokens, model.tokenizer.all_special_tokens)
    read[read] = ~activations.sink_mask(hidden[read])  # sinks found among the text's own tokens, as in capture
    tokens = [model.tokenizer.convert_tokens_to_string([t]) for t in tokens]
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(hidden))
    f[torch.from_numpy(~read)] = 0.0
    return tokens, f.numpy()


@dataclass
class FiredOnText:
    """Which features fire on a typed text, shaped for the Text & steering page."""

    tokens: list[str]
    activations: np.ndarray  # (tokens, latents)
    strongest: np.ndarray  # (latents,) each feature's largest activation on the text
    features: list[int]  # those that fired, strongest first
    top_per_token: list[list[tuple[int, float, str]]]  # per token: its 3 strongest (feature, value, label)

    def table(self, labels: pd.Series) -> pd.DataFrame:
        """The features that fired, strongest first: largest activation, tokens fired on, label."""
        fired = self.features
        return pd.DataFrame(
            {
                "feature": fired,
                "max activation": [float(self.strongest[f]) for f in fired],
                "tokens": [int((self.activations[:, f] > 0).sum()) for f in fired],
                "label": [str(labels.get(f, "")) or "(no label: too few examples)" for f in fired],
            }
        )


def fired_on_text(store: Store, model_id: int, text: str, labels: pd.Series) -> FiredOnText:
    """text_activations, with each token's three strongest features (labelled from `labels`, by feature)
    and the features that fired, strongest first."""
    tokens, values = text_activations(store, model_id, text)
    strongest = values.max(0) if len(values) else np.zeros(values.shape[1])
    fired = [int(f) for f in strongest.argsort()[::-1] if strongest[f] > 0]
    per_token = [
        [(int(f), float(v[f]), str(labels.get(int(f), ""))) for f in v.argsort()[::-1][:3] if v[f] > 0] for v in values
    ]
    return FiredOnText(tokens, values, strongest, fired, per_token)


def text_record(store: Store, model_id: int, text: str) -> dict:
    """fired_on_text as plain JSON (`latentviz text-features --json`): each token with its strongest
    features (activation and label), and every feature that fired with its largest activation."""
    from latentviz.features.reads import statistics

    labels = statistics(store, model_id).set_index("feature")["label"] if store.has_feature_dashboards(model_id) else {}
    fired = fired_on_text(store, model_id, text, labels)

    def named(feature: int, value: float, label) -> dict:
        return {"feature": feature, "activation": round(float(value), 4), "label": str(label or "")}

    return {
        "model": model_id,
        "tokens": [
            {"token": token, "features": [named(*found) for found in top]}
            for token, top in zip(fired.tokens, fired.top_per_token, strict=True)
        ],
        "fired": [named(f, fired.strongest[f], labels.get(f, "")) for f in fired.features],
    }


@dataclass
class Steered:
    """Two continuations of a prompt, and how strongly the steered feature reads on each text."""

    plain: str
    steered: str
    # the feature's mean activation over each whole text (prompt + continuation), read back without
    # steering: whether the steered text is, by the SAE's own reading, more about the feature
    activation: tuple[float, float]


def steer(
    store: Store,
    model_id: int,
    feature: int,
    prompt: str,
    strength: float = STEER.strength,
    max_new_tokens: int = STEER.max_new_tokens,
) -> Steered:
    """Greedy continuations of `prompt` without and with strength·max_activation·(decoder direction)
    added at the SAE's layer and site, at every position, and the feature's mean activation on each."""
    row, sae = load_sae(store, model_id)
    if not prompt.strip():
        raise LatentvizError("type a prompt to continue")
    corpus.check_length(prompt, "prompt")
    if not 1 <= max_new_tokens <= settings.MAX_NEW_TOKENS:
        raise LatentvizError(f"generate 1 to {settings.MAX_NEW_TOKENS} new tokens, not {max_new_tokens}")
    lm, tokenizer = backbones.causal_lm(row["backbone"], settings.cache_dir(store.path))
    values = store.feature_values(model_id, feature)
    top = float(values.max()) if len(values) else 1.0  # strength is in units of the feature's largest activation
    direction = (sae.W_dec[feature].detach() / sae.input_scale).to(lm.device) * float(strength) * float(top)
    where = backbones.site_module(lm, sae.config.layer, sae.config.site)

    def add(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + direction, *output[1:])
        return output + direction

    (ids,) = backbones.token_ids(tokenizer, [prompt], runs.from_record(row).prepend_bos)
    input_ids = torch.tensor([ids], device=lm.device)
    encoded = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

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
    activation = tuple(float(_read(store, row, sae, prompt + text)[1][:, feature].mean()) for text in (plain, steered))
    return Steered(plain, steered, activation)
