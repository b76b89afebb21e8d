"""Captured language-model activations, the data SAEs train on: per-token hidden states of one
layer over a dataset's texts, written as safetensors shards beside the workspace and registered
in the store with each kept token (text, position, token string). A capture resumes shard by
shard. Special tokens (BOS and the like) are left out, and so, by default, are attention sinks:
positions whose norm is more than `sink_factor` times the median (SmolLM2's first token, for one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from latentviz import backbones, settings
from latentviz.constants import SHARD_FILE
from latentviz.progress import Progress
from latentviz.store import Store, StoreError

TEXTS_PER_SHARD = 256
SINK_FACTOR = (
    4.0  # SmolLM2 (no BOS): the first token sits at ~6.5x the median norm (layer 8, BBC News), the rest at ~1x
)


def sink_mask(states: np.ndarray, factor: float = SINK_FACTOR) -> np.ndarray:
    """True for rows whose L2 norm is more than `factor` times the median norm."""
    norms = np.linalg.norm(states, axis=1)
    return norms > factor * np.median(norms) if len(norms) else np.zeros(0, bool)


def capture(
    store: Store,
    dataset: str,
    backbone_name: str = settings.DEFAULT_DECODER_LM,
    layer: int | None = None,
    *,
    site: str = "resid_post",
    max_tokens: int = 100_000,
    mask_sinks: bool = True,
    sink_factor: float = SINK_FACTOR,
    prepend_bos: bool | None = None,
    progress: Progress | None = None,
) -> int:
    """Capture block `layer`'s output (or its MLP or attention output: `site`) of `backbone_name` for
    the dataset's texts (up to `max_tokens` kept tokens). Returns the capture id; an identical
    capture is resumed or reused."""
    if not store.has_dataset(dataset):
        raise StoreError(f"no dataset named {dataset!r}; add it first")
    model = backbones.shared(backbone_name, settings.cache_dir(store.path))
    layer = backbones.check_layer(model, layer)
    backbones.site_module(model.model, layer, site)  # a bad site fails here, before any work
    params = {"max_tokens": max_tokens, "mask_sinks": mask_sinks, "sink_factor": sink_factor, "hook": site}
    if prepend_bos is not None:  # only then: captures made before this setting are still found
        params["prepend_bos"] = prepend_bos
    capture_id = store.capture_id(dataset, backbone_name, layer, params)
    if store.capture(capture_id)["complete"]:
        return capture_id
    texts = store.texts(dataset)
    done = store.shards(capture_id)
    kept = int(done["tokens"].sum())
    folder = settings.cache_dir(store.path) / "activations" / str(capture_id)
    folder.mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, len(texts), TEXTS_PER_SHARD)):
        if kept >= max_tokens:
            break
        if shard in set(done["shard"]):
            continue
        chunk = texts.iloc[start : start + TEXTS_PER_SHARD]
        rows, positions, tokens, states = backbones.token_states(
            model, chunk["text"].tolist(), layer=layer, site=site, prepend_bos=prepend_bos
        )
        found = pd.DataFrame({"text_id": chunk["id"].to_numpy()[rows], "position": positions, "token": tokens})
        sinks = sink_mask(states, sink_factor) if mask_sinks else np.zeros(len(states), bool)
        keep = ~sinks & (np.cumsum(~sinks) <= max_tokens - kept)  # stop exactly at max_tokens
        masked = sinks & found["text_id"].isin(found["text_id"][keep]).to_numpy()  # kept for display in their texts
        path = folder / SHARD_FILE.format(shard=shard)
        save_file(
            {"states": torch.from_numpy(states[keep]).contiguous()}, path
        )  # file first: a crash leaves it unregistered
        store.add_shard(capture_id, shard, str(path), found[keep], found[masked])
        kept += int(keep.sum())
        if progress:
            progress(kept, max_tokens, f"capturing {backbone_name} layer {layer} {site}")
    store.mark_capture_complete(capture_id)
    return capture_id


def load(store: Store, capture_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(text id per token, states (T, d)) of a capture, in shard order."""
    shards = store.shards(capture_id)
    if shards.empty:
        raise StoreError(f"capture {capture_id} holds no activations; capture them first")
    states = [load_file(path)["states"].numpy() for path in shards["path"]]
    tokens = store.capture_tokens(capture_id)
    return tokens["text_id"].to_numpy(), np.concatenate(states)
