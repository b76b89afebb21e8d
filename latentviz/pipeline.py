"""The pipeline steps, each one plain function that the CLI, the pages and the tests call:

    ingest (source → texts) ─► encode (texts → vectors) ─► project (vectors → 2-D map) ─► place (new text → map)

Every step reads from and writes to the workspace store, reports progress through an optional
`progress(done, total, message)` callback, and can be run again: a finished step is reused, an
interrupted encode resumes where it stopped.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from latentviz import corpus, engines, latent_space, projection, settings
from latentviz.neighbours import CosineIndex
from latentviz.progress import Progress, quiet
from latentviz.steps import CLUSTER, ENCODE, PROJECT, Engine
from latentviz.store import Store, StoreError

if TYPE_CHECKING:
    from latentviz.backbones import Backbone

ENCODE_CHUNK = 512  # texts encoded and committed at a time: an interruption loses at most this many


# -- ingest ------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    dataset: str
    report: corpus.ImportReport


def ingest(
    store: Store,
    source: str,
    *,
    name: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    limit: int | None = None,
    data: bytes | None = None,
    progress: Progress = quiet,
) -> IngestResult:
    """Add a dataset from `bbc-news`, a file path, or (with `data`) uploaded bytes named `source`."""
    if source == settings.BUILTIN_DATASET and data is None:
        if text_column or label_column:
            raise corpus.CorpusError("bbc-news has fixed columns; text and label columns are for uploaded files")
        progress(0, None, "reading BBC News")
        frame, report = corpus.load_bbc_news(limit=settings.DEFAULT_LIMIT if limit is None else limit)
        name = name or settings.BUILTIN_DATASET
        params = {"limit": settings.DEFAULT_LIMIT if limit is None else limit, "seed": settings.SEED}
    else:
        options = {"text_column": text_column, "label_column": label_column}
        frame, report = (
            corpus.parse_upload(data, source, **options) if data is not None else corpus.read_file(source, **options)
        )
        if limit is not None:
            if limit < 1:
                raise corpus.CorpusError(f"the limit must be a positive number of texts, got {limit}")
            frame = frame.iloc[:limit]
            report.kept = len(frame)
        name = name or Path(source).stem
        params = {"file": Path(source).name, **{k: v for k, v in options.items() if v}, "limit": limit}
    if not name.strip():
        raise corpus.CorpusError("the dataset name is empty; give it a name")
    progress(0, len(frame), f"storing {len(frame)} texts")
    store.add_dataset(name, source if data is None else f"upload:{Path(source).name}", frame, params)
    progress(len(frame), len(frame), f"stored {report.summary()}")
    return IngestResult(name, report)


def save_selection(store: Store, dataset: str, text_ids, name: str) -> int:
    """A new dataset of the chosen texts of `dataset` (a selection on its map); returns its size."""
    if not name.strip():
        raise corpus.CorpusError("the dataset name is empty; give it a name")
    texts = store.texts(dataset)
    chosen = texts[texts["id"].isin(list(text_ids))][["text", "label"]]
    if chosen.empty:
        raise StoreError("nothing is selected: drag a box on the map first")
    store.add_dataset(name.strip(), f"selection:{dataset}", chosen.reset_index(drop=True), {"from": dataset})
    return len(chosen)


# -- backbones, loaded once per process (backbones imports torch: on use, so the map's pages need none) --


def backbone(store: Store, name: str) -> Backbone:
    """The named backbone, loaded on first use and then kept for the life of the process."""
    from latentviz import backbones

    return backbones.shared(name, settings.cache_dir(store.path))


def require_dataset(store: Store, dataset: str) -> None:
    if not dataset:
        raise StoreError("choose a dataset")
    if not store.has_dataset(dataset):
        raise StoreError(f"no dataset named {dataset!r}; add it first")


# -- encode ------------------------------------------------------------------------------------


class Encoder:
    """The encode step's worker (engines.py): the backbone loaded once, then one vector per text of a chunk."""

    def __init__(self, backbone_name: str, cache: Path, layer: int, batch_size: int):
        from latentviz import backbones

        self.model = backbones.shared(backbone_name, cache)
        self.layer, self.batch_size = layer, batch_size

    def __call__(self, chunk: dict[str, np.ndarray], progress=None) -> dict[str, np.ndarray]:
        from latentviz import backbones

        vectors = backbones.encode(
            self.model,
            chunk["texts"].tolist(),
            layer=self.layer,
            batch_size=self.batch_size,
            progress=progress and (lambda done, _total, _message: progress(done)),
        )
        return {"ids": chunk["ids"], "vectors": vectors}


def encode(
    store: Store,
    dataset: str,
    *,
    backbone_name: str = ENCODE.backbone,
    layer: int | None = None,
    batch_size: int = ENCODE.batch_size,
    engine: Engine | None = None,
    progress: Progress = quiet,
) -> int:
    """Encode every text of `dataset` (on `engine`: this process or a Ray cluster); returns the
    encoding id. Resumes a partial encoding."""
    from latentviz import backbones

    require_dataset(store, dataset)
    progress(0, None, f"loading {backbone_name}")
    model = backbone(store, backbone_name)
    layer = backbones.check_layer(model, layer)
    encoding_id = store.encoding_id(dataset, backbone_name, layer, model.dim, {"pooling": "mean", "normalize": True})
    texts = store.texts(dataset)
    todo = texts[~texts["id"].isin(store.encoded_text_ids(encoding_id))]
    # Longest first across the whole dataset, so every chunk (and batch within it) holds texts of similar length.
    todo = todo.iloc[np.argsort(-todo["text"].str.len().to_numpy(), kind="stable")]
    total, done = len(texts), len(texts) - len(todo)
    progress(done, total, f"encoding with {backbone_name} layer {layer}" + (f" (resuming at {done})" if done else ""))
    chunks = [
        {"ids": chunk["id"].to_numpy(), "texts": chunk["text"].to_numpy(str)}
        for chunk in (todo.iloc[start : start + ENCODE_CHUNK] for start in range(0, len(todo), ENCODE_CHUNK))
    ]
    worker = (backbone_name, settings.cache_dir(store.path), layer, batch_size)
    within = lambda d: progress(done + d, total, f"encoding with {backbone_name}")  # noqa: E731 (local engine only)
    with closing(engines.run(Encoder, worker, chunks, engine=engine, progress=within)) as results:
        for result in results:
            store.add_vectors(encoding_id, result["ids"], result["vectors"])
            done += len(result["ids"])
            progress(done, total, f"encoding with {backbone_name}")
    store.mark_encoding_complete(encoding_id)
    progress(total, total, f"encoded {total} texts")
    return encoding_id


def find_encoding(store: Store, dataset: str, backbone_name: str = PROJECT.backbone, layer: int | None = None) -> int:
    encodings = store.encodings(dataset)
    matches = encodings[(encodings["backbone"] == backbone_name) & encodings["complete"]]
    if layer is not None:
        matches = matches[matches["layer"] == layer]
    if matches.empty:
        raise StoreError(
            f"dataset {dataset!r} has no finished {backbone_name} encoding; encode it with {backbone_name} first"
        )
    return int(matches["id"].iloc[-1])


# -- project -----------------------------------------------------------------------------------


def project(
    store: Store,
    encoding_id: int,
    *,
    method: str = PROJECT.method,
    params: dict | None = None,
    progress: Progress = quiet,
) -> int:
    """A 2-D map of an encoding; an identical earlier map is reused. Returns the projection id."""
    params = {**projection.default_params(method), **(params or {})}
    existing = store.find_projection(encoding_id, method, params)
    if existing is not None:
        progress(1, 1, "map already computed")
        return existing
    progress(0, None, "reading vectors")
    text_ids, vectors = store.vectors(encoding_id)
    progress(0, 1, f"fitting {method.upper()} on {len(text_ids)} points")
    coords, state = projection.fit(vectors, method, params)
    projection_id = store.add_projection(encoding_id, method, params, state, text_ids, coords)
    progress(0, 1, "naming the map's areas")
    area_names(store, projection_id)
    progress(1, 1, f"{method.upper()} map ready")
    return projection_id


def area_names(store: Store, projection_id: int, points: pd.DataFrame | None = None) -> list[dict]:
    """A map's area names by zoom level: stored as the map is made; a map made before that is named
    here (from `points`, its projection_points where given) and keeps its names where the workspace
    is writable."""
    names = store.area_names(projection_id)
    if names is None:
        points = store.projection_points(projection_id) if points is None else points
        names = projection.map_labels(points[["x", "y"]].to_numpy(), points["text"].tolist())
        if not store.read_only:
            store.set_area_names(projection_id, names)
    return names


# -- place new text ----------------------------------------------------------------------------


@dataclass
class Placed:
    points: pd.DataFrame  # text, x, y: the new texts on the map
    neighbours: list[pd.DataFrame]  # per new text: id, text, label, similarity, x, y


def place(store: Store, projection_id: int, texts: list[str], k: int = 10, index: CosineIndex | None = None) -> Placed:
    """Encode new texts with the map's backbone and layer, place them on the map, find their neighbours.
    `index` is the map's encoding in memory (the page holds one for its clicks); read from the store when
    not given."""
    if not texts:
        raise corpus.CorpusError("no text to place; type a sentence or upload a file")
    if len(texts) > settings.PLACE_MAX_TEXTS:
        raise corpus.CorpusError(
            f"{len(texts):,} texts to place; place up to {settings.PLACE_MAX_TEXTS} at once (add more as a dataset)"
        )
    for text in texts:
        corpus.check_length(text, "text to place")
    fitted = store.projection(projection_id)
    encoding = store.encoding(fitted[0]["encoding_id"])
    if encoding["backbone"].startswith("vae#"):  # a VAE's map: its posterior means
        new_vectors = latent_space.open_space(store, int(encoding["backbone"][4:])).latents(texts)[0]
    else:
        from latentviz import backbones

        new_vectors = backbones.encode(backbone(store, encoding["backbone"]), texts, layer=int(encoding["layer"]))
    return _placed(store, projection_id, fitted, new_vectors, texts, k, index)


def place_vectors(
    store: Store,
    projection_id: int,
    new_vectors: np.ndarray,
    labels: list[str],
    k: int = 10,
    index: CosineIndex | None = None,
) -> Placed:
    """Place vectors of the map's encoding on the map (without refitting) and find their neighbours."""
    return _placed(store, projection_id, store.projection(projection_id), new_vectors, labels, k, index)


def _placed(store: Store, projection_id: int, fitted, new_vectors, labels, k, index) -> Placed:
    row, params, state = fitted
    points = store.projection_points(projection_id)
    index = index or CosineIndex.of_encoding(store, row["encoding_id"])
    train_vectors = train_coords = None
    if row["method"] == "umap":  # placement reads cosine distances: the index's unit vectors serve
        train_vectors, train_coords = index.rows_of(points["id"]), points[["x", "y"]].to_numpy(np.float32)
    coords = projection.transform(row["method"], params, state, new_vectors, train_vectors, train_coords)
    neighbours = [index.table(points, *index.nearest(vector, k)) for vector in new_vectors]
    return Placed(pd.DataFrame({"text": labels, "x": coords[:, 0], "y": coords[:, 1]}), neighbours)


# -- clusters of a map ---------------------------------------------------------------------------


def clusters(store: Store, projection_id: int, method: str = CLUSTER.method, k: int = CLUSTER.k) -> pd.Series:
    """Each text's cluster on a map, indexed by text id and named by its cluster's most distinctive
    words (c-TF-IDF): "3 · film, films, horror". k-means clusters the encoding's vectors; HDBSCAN the
    map's 2-D points, where the points it leaves out are named projection.NOISE."""
    row, _, _ = store.projection(projection_id)
    points = store.projection_points(projection_id)
    if method == "k-means":
        ids, vectors = store.vectors(row["encoding_id"])
        labels = projection.kmeans_clusters(vectors, k)
    elif method == "HDBSCAN":
        ids, labels = points["id"].to_numpy(), projection.hdbscan_clusters(points[["x", "y"]].to_numpy())
    else:
        raise projection.ProjectionError(f"unknown clustering {method!r}; use k-means or HDBSCAN")
    texts = points.set_index("id").loc[ids, "text"].tolist()
    words = projection.cluster_words(texts, labels.tolist())
    names = {c: projection.NOISE if c < 0 else f"{c} · {', '.join(words.get(c, []))}".rstrip(" ·") for c in set(labels)}
    return pd.Series([names[c] for c in labels], index=ids)


# -- the default, for a first run --------------------------------------------------------------


def build_default_map(store: Store, *, limit: int | None = None, progress: Progress = quiet) -> int:
    """bbc-news → minilm → UMAP, reusing whatever is already in the workspace. Returns the projection id."""
    if not store.has_dataset(settings.BUILTIN_DATASET):
        ingest(store, settings.BUILTIN_DATASET, limit=limit, progress=progress)
    encoding_id = encode(store, settings.BUILTIN_DATASET, progress=progress)
    return project(store, encoding_id, method="umap", progress=progress)
