"""The pipeline steps, each one plain function that the CLI, the pages and the tests call:

    ingest (source → texts) ─► encode (texts → vectors) ─► project (vectors → 2-D map) ─► place (new text → map)

Every step reads from and writes to the workspace store, reports progress through an optional
`progress(done, total, message)` callback, and can be run again: a finished step is reused, an
interrupted encode resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentviz import (
    backbones,
    corpus,
    latent_space,
    metrics,
    projection,
    settings,
    train,
)
from latentviz.store import Store, StoreError

Progress = Callable[[int, int | None, str], None]
ENCODE_CHUNK = 512  # texts encoded and committed at a time: an interruption loses at most this many


def _quiet(done: int, total: int | None, message: str) -> None:
    pass


# -- ingest ------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    dataset: str
    report: corpus.ImportReport


def ingest(store: Store, source: str, *, name: str | None = None, text_column: str | None = None,
           label_column: str | None = None, limit: int | None = None, data: bytes | None = None,
           progress: Progress = _quiet) -> IngestResult:
    """Add a dataset from `bbc-news`, a file path, or (with `data`) uploaded bytes named `source`."""
    if source == settings.BUILTIN_DATASET and data is None:
        if text_column or label_column:
            raise corpus.CorpusError("bbc-news has fixed columns; --text-column/--label-column are for uploaded files")
        progress(0, None, "reading BBC News")
        frame, report = corpus.load_bbc_news(limit=settings.DEFAULT_LIMIT if limit is None else limit)
        name = name or settings.BUILTIN_DATASET
        params = {"limit": settings.DEFAULT_LIMIT if limit is None else limit, "seed": settings.SEED}
    else:
        options = {"text_column": text_column, "label_column": label_column}
        frame, report = corpus.parse_upload(data, source, **options) if data is not None else corpus.read_file(source, **options)
        if limit is not None:
            if limit < 1:
                raise corpus.CorpusError(f"--limit must be a positive number of texts, got {limit}")
            frame = frame.iloc[:limit]
            report.kept = len(frame)
        name = name or Path(source).stem
        params = {"file": Path(source).name, **{k: v for k, v in options.items() if v}, "limit": limit}
    if not name.strip():
        raise corpus.CorpusError("the dataset name is empty; pass --name")
    progress(0, len(frame), f"storing {len(frame)} texts")
    store.add_dataset(name, source if data is None else f"upload:{Path(source).name}", frame, params)
    progress(len(frame), len(frame), f"stored {report.summary()}")
    return IngestResult(name, report)


# -- backbones, loaded once per process --------------------------------------------------------

def backbone(store: Store, name: str) -> backbones.Backbone:
    """The named backbone, loaded on first use and then kept for the life of the process."""
    return backbones.shared(name, settings.cache_dir(store.path))


def _require_dataset(store: Store, dataset: str) -> None:
    if not store.has_dataset(dataset):
        raise StoreError(f"no dataset named {dataset!r}; see `latentviz info` or ingest it first")


# -- encode ------------------------------------------------------------------------------------

def encode(store: Store, dataset: str, *, backbone_name: str = settings.DEFAULT_BACKBONE, layer: int | None = None,
           batch_size: int = backbones.BATCH_SIZE, progress: Progress = _quiet) -> int:
    """Encode every text of `dataset`; returns the encoding id. Resumes a partial encoding."""
    _require_dataset(store, dataset)
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
    for start in range(0, len(todo), ENCODE_CHUNK):
        chunk = todo.iloc[start:start + ENCODE_CHUNK]
        vectors = backbones.encode(model, chunk["text"].tolist(), layer=layer, batch_size=batch_size,
                                   progress=lambda d, _t: progress(done + d, total, f"encoding with {backbone_name}"))
        store.add_vectors(encoding_id, chunk["id"].to_numpy(), vectors)
        done += len(chunk)
    store.mark_encoding_complete(encoding_id)
    progress(total, total, f"encoded {total} texts")
    return encoding_id


def find_encoding(store: Store, dataset: str, backbone_name: str = settings.DEFAULT_BACKBONE, layer: int | None = None) -> int:
    encodings = store.encodings(dataset)
    matches = encodings[(encodings["backbone"] == backbone_name) & encodings["complete"]]
    if layer is not None:
        matches = matches[matches["layer"] == layer]
    if matches.empty:
        raise StoreError(f"dataset {dataset!r} has no finished {backbone_name} encoding; run `latentviz encode --dataset {dataset} --backbone {backbone_name}`")
    return int(matches["id"].iloc[-1])


# -- project -----------------------------------------------------------------------------------

def project(store: Store, encoding_id: int, *, method: str = "umap", params: dict | None = None,
            progress: Progress = _quiet) -> int:
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
    progress(1, 1, f"{method.upper()} map ready")
    return projection_id


# -- place new text ----------------------------------------------------------------------------

@dataclass
class Placed:
    points: pd.DataFrame  # text, x, y: the new texts on the map
    neighbours: list[pd.DataFrame]  # per new text: id, text, label, similarity, x, y


def place(store: Store, projection_id: int, texts: list[str], k: int = 10) -> Placed:
    """Encode new texts with the map's backbone and layer, place them on the map, find their neighbours."""
    if not texts:
        raise corpus.CorpusError("no text to place; type a sentence or upload a file")
    row, _, _ = store.projection(projection_id)
    encoding = store.encoding(row["encoding_id"])
    if encoding["backbone"].startswith("vae#"):  # a VAE's map: its posterior means
        new_vectors = latent_space.open_space(store, int(encoding["backbone"][4:])).latents(texts)[0]
    else:
        new_vectors = backbones.encode(backbone(store, encoding["backbone"]), texts, layer=int(encoding["layer"]))
    return place_vectors(store, projection_id, new_vectors, texts, k)


def place_vectors(store: Store, projection_id: int, new_vectors: np.ndarray, labels: list[str], k: int = 10) -> Placed:
    """Place vectors of the map's encoding on the map (without refitting) and find their neighbours."""
    row, params, state = store.projection(projection_id)
    points = store.projection_points(projection_id)
    train_vectors = train_coords = None
    if row["method"] == "umap":
        text_ids, vectors = store.vectors(row["encoding_id"])
        keep = np.isin(text_ids, points["id"].to_numpy())  # points and vectors are both in text-id order
        train_vectors, train_coords = vectors[keep], points[["x", "y"]].to_numpy(np.float32)
    coords = projection.transform(row["method"], params, state, new_vectors, train_vectors, train_coords)
    xy = points.set_index("id")[["x", "y"]]
    neighbours = [store.nearest(row["encoding_id"], vector, k).join(xy, on="id") for vector in new_vectors]
    return Placed(pd.DataFrame({"text": labels, "x": coords[:, 0], "y": coords[:, 1]}), neighbours)


def neighbours_of(store: Store, projection_id: int, text_id: int, k: int = 10) -> pd.DataFrame:
    """The k nearest stored texts (cosine) to a stored text, with their map coordinates."""
    row, _, _ = store.projection(projection_id)
    vector = store.vector(row["encoding_id"], text_id)
    xy = store.projection_points(projection_id).set_index("id")[["x", "y"]]
    return store.nearest(row["encoding_id"], vector, k, exclude=text_id).join(xy, on="id")


# -- the default, for a first run --------------------------------------------------------------

def build_default_map(store: Store, *, limit: int | None = None, progress: Progress = _quiet) -> int:
    """bbc-news → minilm → UMAP, reusing whatever is already in the workspace. Returns the projection id."""
    if not store.has_dataset(settings.BUILTIN_DATASET):
        ingest(store, settings.BUILTIN_DATASET, limit=limit, progress=progress)
    encoding_id = encode(store, settings.BUILTIN_DATASET, progress=progress)
    return project(store, encoding_id, method="umap", progress=progress)


# -- train a discrete-latent (VQ) model on sentence vectors ------------------------------------

HELD_OUT = 0.1  # share of texts kept out of training for the held-out figures


def split_ids(n: int, seed: int = settings.SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of n texts, fixed by the seed."""
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * HELD_OUT)))
    return np.sort(order[cut:]), np.sort(order[:cut])


TOKEN_LIMIT = 100_000  # token vectors captured for a token-level model by default


def train_vq(store: Store, dataset: str, *, backbone_name: str = settings.DEFAULT_BACKBONE,
             options: dict | None = None, training: train.TrainConfig | None = None, name: str | None = None,
             tokens: bool = False, layer: int | None = None, max_tokens: int = TOKEN_LIMIT,
             progress: Progress = _quiet) -> int:
    """Train a VQ model and store its curves, codes and metrics; returns the model id.

    By default it quantises a dataset's stored sentence vectors; with `tokens`, the per-token
    hidden states of `backbone_name` at `layer` (one code per token)."""
    from latentviz.models.vq import VQConfig

    training = training or train.TrainConfig()
    _require_dataset(store, dataset)
    if tokens:
        model = backbone(store, backbone_name)
        data = {"unit": "token", "layer": backbones.check_layer(model, layer), "max_tokens": max_tokens}
        dim, options = model.dim, {**(options or {}), "groups": 1}
    else:
        data = {"unit": "sentence"}
        dim = int(store.encoding(find_encoding(store, dataset, backbone_name))["dim"])
    config = VQConfig(d_in=dim, **(options or {}))
    unit = f" tokens L{data['layer']}" if tokens else ""
    model_id = store.add_model("vq", name or f"{config.quantizer} K={config.size}{unit}", dataset, backbone_name,
                               {"model": asdict(config), "training": asdict(training), "data": data})
    return _fit_vq(store, model_id, progress)


def _vq_data(store: Store, row: dict, data: dict, progress: Progress):
    """(text id per row, token positions or None, token strings or None, vectors) to train on."""
    if data["unit"] == "sentence":
        text_ids, vectors = store.vectors(find_encoding(store, row["dataset"], row["backbone"]))
        return text_ids, None, None, np.array(vectors)  # a writable copy: the store hands out read-only arrays
    texts = store.texts(row["dataset"])
    rows, positions, tokens, vectors = backbones.token_states(
        backbone(store, row["backbone"]), texts["text"].tolist(), layer=data["layer"], max_tokens=data["max_tokens"],
        progress=lambda done, total: progress(done, total, "capturing token activations"))
    # Unit length: a few tokens with huge norms (SmolLM2's attention sinks) would otherwise own the codebook.
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return texts["id"].to_numpy()[rows], positions, tokens, vectors


def _require_unfinished(store: Store, model_id: int, kind: str) -> None:
    """A resume needs a run of this kind that started and has not finished."""
    row = store.model(model_id)
    if row is None or row["kind"] != kind:
        raise StoreError(f"no {kind.upper()} model with id {model_id}; see `latentviz info`")
    if row["checkpoint"] is not None:
        raise StoreError(f"{kind.upper()} model {model_id} has finished training; nothing to resume")


def resume_vq(store: Store, model_id: int, progress: Progress = _quiet) -> int:
    """Continue an interrupted VQ training run from its last checkpoint."""
    _require_unfinished(store, model_id, "vq")
    return _fit_vq(store, model_id, progress)


def _fit_vq(store: Store, model_id: int, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.vq import SentenceVQ, VQConfig

    row = store.model(model_id)
    saved = row["config"]
    config, training = VQConfig(**saved["model"]), train.TrainConfig(**saved["training"])
    text_ids, positions, tokens, vectors = _vq_data(store, row, saved.get("data", {"unit": "sentence"}), progress)
    if len(text_ids) < 20:
        raise StoreError(f"dataset {row['dataset']!r} gives {len(text_ids)} vectors to train on; a VQ model needs at least 20")
    torch.manual_seed(training.seed)
    model = SentenceVQ(config)
    folder = settings.models_dir(store.path) / str(model_id)
    store.drop_training_metrics_after(model_id, train.checkpoint_step(folder))  # curves resume with the weights
    train_rows, held_rows = split_ids(len(text_ids), training.seed)
    x = torch.from_numpy(vectors)
    train.fit(model, x[train_rows], config=training, held_out=x[held_rows], folder=folder,
              progress=lambda step, total, _: progress(step, total, f"training {config.quantizer}"),
              on_eval=lambda step, figures: store.add_training_metrics(model_id, step, "held_out", figures))
    model.eval()
    codes = model.codes(x).numpy()
    codes = codes.reshape(len(codes), config.groups, -1)  # (N, groups, stages)
    store.add_codes(model_id, text_ids, codes, positions, tokens)
    held = codes[held_rows]
    figures = {**metrics.codebook_usage(held, config.size), "reconstruction": train.evaluate(model, x[held_rows])["reconstruction"],
               "held_out": len(held_rows)}
    if config.stages > 1:  # per-stage figures for residual VQ
        for stage in range(config.stages):
            usage = metrics.codebook_usage(held[:, :, stage], config.size)
            figures.update({f"stage{stage + 1}_{k}": v for k, v in usage.items() if k != "codebook_size"})
    labels = store.texts(row["dataset"]).set_index("id").loc[text_ids[held_rows], "label"]
    if labels.notna().all():
        first_codes = held[:, 0, 0]  # the first slot's code, against the label
        figures.update({"nmi": metrics.nmi(first_codes, labels.to_numpy()), "purity": metrics.purity(first_codes, labels.to_numpy())})
    base.save(model, folder)
    store.finish_model(model_id, str(folder), figures)
    progress(training.steps, training.steps, f"model {model_id} ready")
    return model_id


# -- train a text VAE ---------------------------------------------------------------------------

VAE_VOCAB = 4000  # words kept; the output softmax over them is most of a CPU training step
VAE_DEFAULTS = {"variant": "pretrained-encoder", "latent_dim": 32, "hidden": 256, "max_len": 32, "free_bits": 0.5, "skip": True}
VAE_EPOCHS, VAE_LR, VAE_BATCH = 12, 6e-3, 64  # on BBC News' 5,000: reconstructions keep topic and key words, 5 min on 2 cores (measured)

def train_vae(store: Store, dataset: str, *, options: dict | None = None, training: train.TrainConfig | None = None,
              epochs: int | None = None, vocab_size: int = VAE_VOCAB, name: str | None = None,
              progress: Progress = _quiet) -> int:
    """Train a text VAE on a dataset (the pretrained-encoder variant reads its stored MiniLM vectors);
    store its curves, its posterior means and log-variances as encodings (so the Latent Map can show
    them) and its held-out diagnostics. `epochs`, when given, sets the steps. Returns the model id."""
    from latentviz.models.vae import VAEConfig
    from latentviz.vocab import SPECIALS

    training = training or train.TrainConfig()
    _require_dataset(store, dataset)
    options = {**VAE_DEFAULTS, **(options or {})}
    if options["variant"] != "rnn":
        options["d_in"] = int(store.encoding(find_encoding(store, dataset, settings.DEFAULT_BACKBONE))["dim"])
    if options["variant"] == "pretrained-decoder":
        lm, _ = backbones.causal_lm(options.setdefault("decoder_lm", settings.DEFAULT_DECODER_LM), settings.cache_dir(store.path))
        options["lm_dim"] = lm.config.hidden_size
    config = VAEConfig(vocab=SPECIALS, **options)  # checks the options before anything is stored
    n = len(store.texts(dataset))
    if n < 20:
        raise StoreError(f"dataset {dataset!r} has {n} texts; a VAE needs at least 20")
    if epochs is not None:  # an epoch: one pass over the training texts, in batches
        batches = -(-len(split_ids(n, training.seed)[0]) // training.batch_size)
        training = train.TrainConfig(**{**asdict(training), "steps": max(1, epochs * batches)})
    backbone_name = settings.DEFAULT_BACKBONE if config.variant != "rnn" else ""
    model_id = store.add_model("vae", name or f"{config.variant} VAE d={config.latent_dim}", dataset, backbone_name,
                               {"model": options, "training": asdict(training), "data": {"vocab_size": vocab_size}})
    return _fit_vae(store, model_id, progress)


def resume_vae(store: Store, model_id: int, progress: Progress = _quiet) -> int:
    """Continue a stopped or interrupted VAE training run from its last checkpoint."""
    _require_unfinished(store, model_id, "vae")
    return _fit_vae(store, model_id, progress)


def _fit_vae(store: Store, model_id: int, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.vae import TextVAE, VAEConfig
    from latentviz.vocab import SPECIALS, Vocab

    row = store.model(model_id)
    saved = row["config"]
    training = train.TrainConfig(**saved["training"])
    texts = store.texts(row["dataset"])
    text_ids, vectors = texts["id"].to_numpy(), np.zeros((len(texts), 1), np.float32)
    if saved["model"]["variant"] != "rnn":
        text_ids, vectors = store.vectors(find_encoding(store, row["dataset"], row["backbone"]))
        texts = texts.set_index("id").loc[text_ids].reset_index()
    train_rows, held_rows = split_ids(len(texts), training.seed)
    # Rebuilt the same way on a resume: same texts, same split, same vocabulary.
    lm_decoder = saved["model"]["variant"] == "pretrained-decoder"
    vocab = SPECIALS if lm_decoder else Vocab.build(texts["text"].iloc[train_rows], size=saved["data"]["vocab_size"]).tokens
    config = VAEConfig(vocab=vocab, **saved["model"])
    torch.manual_seed(training.seed)
    model = TextVAE(config)
    if lm_decoder:
        model.attach_lm(*backbones.causal_lm(config.decoder_lm, settings.cache_dir(store.path)), fresh=True)
    folder = settings.models_dir(store.path) / str(model_id)
    store.drop_training_metrics_after(model_id, train.checkpoint_step(folder))  # curves resume with the weights
    data = (model.vocab.encode(texts["text"].tolist(), config.max_len), torch.from_numpy(np.array(vectors)))
    held = train.rows(data, torch.from_numpy(held_rows))
    train.fit(model, train.rows(data, torch.from_numpy(train_rows)), config=training, held_out=held, folder=folder,
              progress=lambda step, total, _: progress(step, total, f"training {config.variant} VAE"),
              on_eval=lambda step, figures: store.add_training_metrics(model_id, step, "held_out", {**figures, **vae_health(model, held)}))
    progress(training.steps, training.steps, "diagnostics: active units, mutual information, importance-weighted NLL")
    figures = vae_diagnostics(model, held)
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(*data)
    for name, values in ((latent_space.mean_encoding(model_id), mu), (latent_space.logvar_encoding(model_id), logvar)):
        encoding_id = store.encoding_id(row["dataset"], name, 0, config.latent_dim, {"pooling": f"posterior {name.split()[-1]}"})
        store.add_vectors(encoding_id, text_ids, values.numpy())
        store.mark_encoding_complete(encoding_id)
    base.save(model, folder)
    store.finish_model(model_id, str(folder), figures)
    progress(training.steps, training.steps, f"model {model_id} ready")
    return model_id


def vae_health(model, held: tuple, texts: int = 200, samples: int = 5) -> dict:
    """Cheap figures for curves during training: AU and MI over the held-out texts, and an
    importance-weighted NLL with few samples on a fixed subset of them."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng():  # the same samples at every evaluation; training's RNG untouched
        torch.manual_seed(0)
        mu, logvar = model.encode(*held)
        joint, q = model.log_weights(*(t[:texts] for t in held), samples=samples)
    model.train(was_training)
    return {"active_units": metrics.active_units(mu.numpy()), "mutual_information": metrics.mutual_information(mu.numpy(), logvar.numpy()),
            "iw_nll": float(metrics.importance_weighted_nll(joint.numpy(), q.numpy()).mean())}


def vae_diagnostics(model, held: tuple, samples: int = 100, prior_decodes: int = 50) -> dict:
    """Held-out figures by their reference definitions (see metrics.py), and a collapse verdict."""
    import torch

    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(*held)
        joint, q = model.log_weights(*held, samples=samples)
        prior = model.decode(torch.randn(prior_decodes, model.config.latent_dim, generator=torch.Generator().manual_seed(0)))
    mu, logvar = mu.numpy(), logvar.numpy()
    kl_dims = metrics.gaussian_kl_per_dim(mu, logvar)
    nll = metrics.importance_weighted_nll(joint.numpy(), q.numpy())
    tokens = int((held[0][:, 1:] != 0).sum())  # words and <eos>, the decoder's targets
    au, mi, kl = metrics.active_units(mu), metrics.mutual_information(mu, logvar), float(kl_dims.sum())
    distinct = len(set(prior))
    # Collapsed: no unit carries information, or every prior sample decodes to (nearly) the same sentence.
    collapsed = au == 0 or kl < 0.1 or mi < 0.05 or distinct <= 2
    return {"iw_nll": float(nll.mean()), "iw_samples": samples, "perplexity": metrics.perplexity_from_nll(float(nll.sum()), tokens),
            "kl": kl, "kl_per_dim": kl_dims.round(4).tolist(), "active_units": au, "mutual_information": mi,
            "prior_decode_diversity": distinct / len(prior), "collapsed": bool(collapsed), "held_out": len(mu)}


# -- train a sparse autoencoder on captured LM activations ----------------------------------------

SAE_CE_TEXTS = 32  # held-out texts whose next-token loss is measured with the reconstruction spliced in


def train_sae(store: Store, dataset: str, *, backbone_name: str = settings.DEFAULT_DECODER_LM, layer: int | None = None,
              site: str = "resid_post", options: dict | None = None, training: train.TrainConfig | None = None, max_tokens: int = 100_000,
              name: str | None = None, progress: Progress = _quiet) -> int:
    """Capture (or reuse) a layer's activations, train an SAE on 90% of the texts' tokens, and store
    its curves and held-out figures. Returns the model id."""
    import torch

    from latentviz import activations
    from latentviz.models import base
    from latentviz.models.sae import SAEConfig, SparseAutoencoder

    training = training or train.TrainConfig(batch_size=4096, lr=2e-4)
    capture_id = activations.capture(store, dataset, backbone_name, layer, site=site, max_tokens=max_tokens, progress=progress)
    layer = int(store.capture(capture_id)["layer"])
    text_ids, states = activations.load(store, capture_id)
    texts = np.unique(text_ids)
    if len(texts) < 10:
        raise StoreError(f"dataset {dataset!r} gives tokens from {len(texts)} texts; an SAE needs at least 10")
    _, held_texts = split_ids(len(texts), training.seed)  # held out by text, so no sentence is half seen
    held = np.isin(text_ids, texts[held_texts])
    config = SAEConfig(d_in=states.shape[1], layer=layer, site=site, model_name=backbone_name, **(options or {}))
    where = f"L{layer}" + ("" if site == "resid_post" else f" {site}")
    model_id = store.add_model("sae", name or f"{config.architecture} SAE {config.d_sae} {where}", dataset, backbone_name,
                               {"model": asdict(config), "training": asdict(training), "data": {"capture": capture_id}})
    torch.manual_seed(training.seed)
    sae = SparseAutoencoder(config)
    x = torch.from_numpy(states)
    folder = settings.models_dir(store.path) / str(model_id)
    train.fit(sae, x[~held], config=training, held_out=x[held], folder=folder,
              progress=lambda step, total, _: progress(step, total, f"training {config.architecture} SAE"),
              on_eval=lambda step, figures: store.add_training_metrics(model_id, step, "held_out", figures))
    progress(training.steps, training.steps, "held-out figures and the spliced-in next-token loss")
    held_text_list = store.texts(dataset).set_index("id").loc[texts[held_texts][:SAE_CE_TEXTS], "text"].tolist()
    figures = sae_figures(store, sae, x[held], held_text_list, backbone_name)
    base.save(sae, folder)
    store.finish_model(model_id, str(folder), figures)
    return model_id


def sae_figures(store: Store, sae, held, texts: list[str], backbone_name: str) -> dict:
    """Held-out figures by their reference definitions (metrics.py), and the LM's next-token loss
    with the SAE's reconstruction spliced in at its layer and site, against clean and zero-ablated runs."""
    import torch

    from latentviz import activations

    sae.eval()
    with torch.no_grad():
        f = sae.encode(held)
        x_hat = sae.decode(f)
    f, x_hat, x = f.numpy(), x_hat.numpy(), held.numpy()
    counts = metrics.firing_counts(f)
    hist, edges = metrics.log_density_histogram(counts, len(x))
    lm, tokenizer = backbones.causal_lm(backbone_name, settings.cache_dir(store.path))

    def splice(fill):
        def replace(hidden):
            flat = hidden.reshape(-1, hidden.shape[-1])
            keep = torch.from_numpy(activations.sink_mask(flat.float().cpu().numpy())).to(flat.device)  # sinks stay as they were
            new = fill(flat).to(flat.dtype)
            return torch.where(keep[:, None], flat, new).view_as(hidden)
        return replace

    layer, site = sae.config.layer, sae.config.site
    with torch.no_grad():
        ce_clean = backbones.next_token_loss(lm, tokenizer, texts, layer)
        ce_sae = backbones.next_token_loss(lm, tokenizer, texts, layer, splice(lambda h: sae.decode(sae.encode(h.float().cpu())).to(h.device)), site=site)
        ce_zero = backbones.next_token_loss(lm, tokenizer, texts, layer, splice(torch.zeros_like), site=site)
    return {"l0": metrics.l0(f), "fvu": metrics.fraction_of_variance_unexplained(x, x_hat),
            "explained_variance": metrics.explained_variance(x, x_hat), "cosine": metrics.mean_cosine(x, x_hat),
            "dead_latents": metrics.dead_latents(counts), "dead_window_tokens": len(x),
            "density_histogram": {"counts": hist.tolist(), "log10_edges": edges.round(3).tolist()},
            "ce_clean": ce_clean, "ce_sae": ce_sae, "ce_zero_ablation": ce_zero,
            "ce_loss_recovered": metrics.ce_loss_recovered(ce_clean, ce_sae, ce_zero), "delta_lm_loss": metrics.delta_lm_loss(ce_clean, ce_sae),
            "ce_texts": len(texts), "held_out_tokens": len(x)}
