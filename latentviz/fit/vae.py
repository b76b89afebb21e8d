"""Train, resume and evaluate a text VAE; its posterior means and log-variances become encodings
(so the Latent Map can show them), its held-out diagnostics the model's figures."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from latentviz import backbones, latent_space, metrics, pipeline, settings
from latentviz import train as loop
from latentviz.fit.common import Progress, add_run, models, quiet, run_of, split_ids
from latentviz.fit.common import curves as named_curves
from latentviz.runs import VAERun
from latentviz.store import Store, StoreError

KIND = "vae"
JOBS = ("train vae", "resume vae")
CURVES = {
    "loss": "loss (β-weighted)",
    "reconstruction": "reconstruction NLL",
    "kl": "KL",
    "beta": "β",
    "active_units": "active units",
    "mutual_information": "mutual information",
    "iw_nll": "IW-NLL (K = 5)",
}


def train(store: Store, run: VAERun, progress: Progress = quiet) -> int:
    """Train a text VAE on a dataset and store its run, curves, latents and held-out diagnostics.
    The run's epochs set its steps. Returns the model id."""
    pipeline.require_dataset(store, run.dataset)
    config = run.model
    if config.variant != "rnn":
        encoding = store.encoding(pipeline.find_encoding(store, run.dataset, settings.DEFAULT_BACKBONE))
        config = replace(config, d_in=int(encoding["dim"]))
    if config.variant == "pretrained-decoder":
        lm, _ = backbones.causal_lm(config.decoder_lm, settings.cache_dir(store.path))
        config = replace(config, lm_dim=lm.config.hidden_size)
    n = len(store.texts(run.dataset))
    if n < 20:
        raise StoreError(f"dataset {run.dataset!r} has {n} texts; a VAE needs at least 20")
    batches = -(-len(split_ids(n, run.training.seed)[0]) // run.training.batch_size)  # an epoch: one pass, in batches
    run = replace(run, model=config, training=replace(run.training, steps=max(1, run.epochs * batches)))
    backbone = settings.DEFAULT_BACKBONE if config.variant != "rnn" else ""
    model_id = add_run(store, KIND, f"{config.variant} VAE d={config.latent_dim}", backbone, run)
    return _fit(store, model_id, run, progress)


def resume(store: Store, model_id: int, progress: Progress = quiet) -> int:
    """Continue a stopped or interrupted VAE training run from its last checkpoint."""
    _, run = run_of(store, model_id, KIND, unfinished=True)
    return _fit(store, model_id, run, progress)


def curves(store: Store, model_id: int) -> pd.DataFrame:
    return named_curves(store, model_id, CURVES)


def summary(store: Store) -> pd.DataFrame:
    """One row per finished VAE: id, name, dataset and its held-out figures."""
    rows = [
        {
            "id": int(r.id),
            "name": r.name,
            "dataset": r.dataset,
            **{k: v for k, v in json.loads(r.metrics or "{}").items() if k != "kl_per_dim"},
        }
        for r in models(store, KIND).itertuples()
    ]
    return pd.DataFrame(rows)


def _fit(store: Store, model_id: int, run: VAERun, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.vae import TextVAE
    from latentviz.vocab import SPECIALS, Vocab

    training = run.training
    texts = store.texts(run.dataset)
    text_ids, vectors = texts["id"].to_numpy(), np.zeros((len(texts), 1), np.float32)
    if run.model.variant != "rnn":
        text_ids, vectors = store.vectors(pipeline.find_encoding(store, run.dataset, settings.DEFAULT_BACKBONE))
        texts = texts.set_index("id").loc[text_ids].reset_index()
    train_rows, held_rows = split_ids(len(texts), training.seed)
    # Rebuilt the same way on a resume: same texts, same split, same vocabulary.
    lm_decoder = run.model.variant == "pretrained-decoder"
    vocab = SPECIALS if lm_decoder else Vocab.build(texts["text"].iloc[train_rows], size=run.vocab_size).tokens
    config = replace(run.model, vocab=vocab)
    torch.manual_seed(training.seed)
    model = TextVAE(config)
    if lm_decoder:
        model.attach_lm(*backbones.causal_lm(config.decoder_lm, settings.cache_dir(store.path)), fresh=True)
    folder = settings.models_dir(store.path) / str(model_id)
    store.drop_training_metrics_after(model_id, loop.checkpoint_step(folder))  # curves resume with the weights
    data = (model.vocab.encode(texts["text"].tolist(), config.max_len), torch.from_numpy(np.array(vectors)))
    held = loop.rows(data, torch.from_numpy(held_rows))
    loop.fit(
        model,
        loop.rows(data, torch.from_numpy(train_rows)),
        config=training,
        held_out=held,
        folder=folder,
        progress=lambda step, total, _: progress(step, total, f"training {config.variant} VAE"),
        on_eval=lambda step, figures: store.add_training_metrics(
            model_id, step, "held_out", {**figures, **health(model, held)}
        ),
    )
    progress(training.steps, training.steps, "diagnostics: active units, mutual information, importance-weighted NLL")
    figures = diagnostics(model, held)
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(*data)
    for name, values in ((latent_space.mean_encoding(model_id), mu), (latent_space.logvar_encoding(model_id), logvar)):
        encoding_id = store.encoding_id(
            run.dataset, name, 0, config.latent_dim, {"pooling": f"posterior {name.split()[-1]}"}
        )
        store.add_vectors(encoding_id, text_ids, values.numpy())
        store.mark_encoding_complete(encoding_id)
    base.save(model, folder)
    store.finish_model(model_id, str(folder), figures)
    progress(training.steps, training.steps, f"model {model_id} ready")
    return model_id


def health(model, held: tuple, texts: int = 200, samples: int = 5) -> dict:
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
    return {
        "active_units": metrics.active_units(mu.numpy()),
        "mutual_information": metrics.mutual_information(mu.numpy(), logvar.numpy()),
        "iw_nll": float(metrics.importance_weighted_nll(joint.numpy(), q.numpy()).mean()),
    }


def diagnostics(model, held: tuple, samples: int = 100, prior_decodes: int = 50) -> dict:
    """Held-out figures by their reference definitions (see metrics.py), and a collapse verdict."""
    import torch

    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(*held)
        joint, q = model.log_weights(*held, samples=samples)
        prior = model.decode(
            torch.randn(prior_decodes, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
        )
    mu, logvar = mu.numpy(), logvar.numpy()
    kl_dims = metrics.gaussian_kl_per_dim(mu, logvar)
    nll = metrics.importance_weighted_nll(joint.numpy(), q.numpy())
    tokens = int((held[0][:, 1:] != 0).sum())  # words and <eos>, the decoder's targets
    au, mi, kl = metrics.active_units(mu), metrics.mutual_information(mu, logvar), float(kl_dims.sum())
    distinct = len(set(prior))
    # Collapsed: no unit carries information, or every prior sample decodes to (nearly) the same sentence.
    collapsed = au == 0 or kl < 0.1 or mi < 0.05 or distinct <= 2
    return {
        "iw_nll": float(nll.mean()),
        "iw_samples": samples,
        "perplexity": metrics.perplexity_from_nll(float(nll.sum()), tokens),
        "kl": kl,
        "kl_per_dim": kl_dims.round(4).tolist(),
        "active_units": au,
        "mutual_information": mi,
        "prior_decode_diversity": distinct / len(prior),
        "collapsed": bool(collapsed),
        "held_out": len(mu),
    }
