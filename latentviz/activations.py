"""Captured language-model activations, the data SAEs train on: per-token hidden states of one
layer over a dataset's texts, written as Parquet shards beside the workspace (store/arrays.py) and
registered in the store with each kept token (text, position, token string). A capture resumes shard by
shard. Special tokens (BOS and the like) are left out, and so, by default, are attention sinks:
positions whose norm is more than `sink_factor` times the median (SmolLM2's first token, for one).
"""

from __future__ import annotations

import uuid
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from latentviz import backbones, engines, settings
from latentviz.progress import Progress
from latentviz.steps import Engine
from latentviz.store import Store, StoreError
from latentviz.store.arrays import owner_folder, read_states, states_table, write_shard
from latentviz.store.locations import delete_files, files_in

TEXTS_PER_SHARD = 256
SINK_FACTOR = (
    4.0  # SmolLM2 (no BOS): the first token sits at ~6.5x the median norm (layer 8, BBC News), the rest at ~1x
)


def sink_mask(states: np.ndarray, factor: float = SINK_FACTOR) -> np.ndarray:
    """True for rows whose L2 norm is more than `factor` times the median norm."""
    norms = np.linalg.norm(states, axis=1)
    return norms > factor * np.median(norms) if len(norms) else np.zeros(0, bool)


class Capturer:
    """The capture step's worker (engines.py): the LM loaded once, then a chunk's per-token states,
    sinks left out, written as the chunk's shard file into the workspace's arrays folder (on a
    cluster, a folder every worker shares); the tokens and the file's name go back to the step."""

    def __init__(
        self,
        backbone_name: str,
        cache: Path,
        layer: int,
        site: str,
        prepend_bos: bool | None,
        sinks: float | None,
        arrays: str,
        capture_id: int,
        tag: str,
    ):
        self.model = backbones.shared(backbone_name, cache)
        self.layer, self.site, self.prepend_bos, self.sinks = layer, site, prepend_bos, sinks
        self.arrays, self.capture_id, self.tag = arrays, capture_id, tag

    def __call__(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, positions, tokens, states = backbones.token_states(
            self.model, chunk["texts"].tolist(), layer=self.layer, site=self.site, prepend_bos=self.prepend_bos
        )
        sinks = sink_mask(states, self.sinks) if self.sinks else np.zeros(len(states), bool)
        shard = int(chunk["shard"])
        name = write_shard(self.arrays, "captures", self.capture_id, shard, states_table(states[~sinks]), self.tag)
        return {
            "text_id": chunk["ids"][rows],
            "position": np.asarray(positions),
            "token": np.array(tokens, dtype=str),
            "sink": sinks,
            "name": np.array(name),
        }


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
    engine: Engine | None = None,
    progress: Progress | None = None,
) -> int:
    """Capture block `layer`'s output (or its MLP or attention output: `site`) of `backbone_name` for
    the dataset's texts (up to `max_tokens` kept tokens), on `engine` (this process or a Ray cluster).
    Returns the capture id; an identical capture is resumed or reused."""
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
    shards = range(-(-len(texts) // TEXTS_PER_SHARD)) if kept < max_tokens else []
    todo = [shard for shard in shards if shard not in set(done["shard"])]
    chunks = [
        {"shard": np.array(shard), "ids": chunk["id"].to_numpy(), "texts": chunk["text"].to_numpy(str)}
        for shard, chunk in ((s, texts.iloc[s * TEXTS_PER_SHARD : (s + 1) * TEXTS_PER_SHARD]) for s in todo)
    ]
    tag = uuid.uuid4().hex[:12]  # this run's files: those it wrote but never registered are deleted at the end
    worker = (
        backbone_name,
        settings.cache_dir(store.path),
        layer,
        site,
        prepend_bos,
        mask_sinks and sink_factor,
        store.arrays_location,
        capture_id,
        tag,
    )
    try:
        # closing: an early stop (enough tokens, Cancel) ends the run at once (on Ray: its workers stop)
        with closing(engines.run(Capturer, worker, chunks, engine=engine)) as results:
            for shard, found in zip(todo, results, strict=True):
                name, sinks = str(found.pop("name")), found.pop("sink")
                found = pd.DataFrame(found)  # text_id, position, token: one row per state
                keep = ~sinks & (np.cumsum(~sinks) <= max_tokens - kept)  # stop exactly at max_tokens
                if keep.sum() < (~sinks).sum():  # the last shard: its file rewritten, cut at max_tokens
                    states = read_states(store.array_path(name))[: int(keep.sum())]
                    name = write_shard(store.arrays_location, "captures", capture_id, shard, states_table(states), tag)
                masked = sinks & found["text_id"].isin(found["text_id"][keep]).to_numpy()  # shown in their texts
                store.add_shard(capture_id, shard, name, found[keep], found[masked])
                kept += int(keep.sum())
                if progress:
                    progress(kept, max_tokens, f"capturing {backbone_name} layer {layer} {site}")
                if kept >= max_tokens:
                    break
    finally:
        registered = {Path(path).name for path in store.shards(capture_id)["path"]}
        written = files_in(store.arrays_location, owner_folder("captures", capture_id), f"-{tag}.parquet")
        delete_files([store.array_path(name) for name in written if Path(name).name not in registered])
    store.mark_capture_complete(capture_id)
    return capture_id


def load(store: Store, capture_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(text id per token, states (T, d)) of a capture, in shard order."""
    shards = store.shards(capture_id)
    if shards.empty:
        raise StoreError(f"capture {capture_id} holds no activations; capture them first")
    states = [read_states(path) for path in shards["path"]]
    tokens = store.capture_tokens(capture_id)
    return tokens["text_id"].to_numpy(), np.concatenate(states)
