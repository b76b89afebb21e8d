"""Train, resume and evaluate a text VAE; its posterior means and log-variances become encodings
(so the Latent Map can show them), its held-out diagnostics the model's figures."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from latentviz import backbones, latent_space, metrics, numbers, pipeline, settings
from latentviz import train as loop
from latentviz.constants import BEST_FILE
from latentviz.fit.common import add_run, models, run_of, split_ids, validation_split
from latentviz.fit.common import curves as named_curves
from latentviz.progress import Progress, quiet
from latentviz.runs import VAERun
from latentviz.store import Store, StoreError

KIND = "vae"
# Validation figures are computed at β = 1; the β training used is the schedule's (see curves).
CURVES = {
    "loss": "validation loss (β = 1)",
    "reconstruction": "reconstruction NLL",
    "kl": "KL",
    "active_units": "active units",
    "mutual_information": "mutual information",
    "iw_nll": "IW-NLL (K = 5)",
}
BETA_CURVE = "β used in training"


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
    batches = -(-len(validation_split(n, run.training.seed)[0]) // run.training.batch_size)  # an epoch, in batches
    run = replace(run, model=config, training=replace(run.training, steps=max(1, run.epochs * batches)))
    backbone = settings.DEFAULT_BACKBONE if config.variant != "rnn" else ""
    model_id = add_run(store, KIND, f"{config.variant} VAE d={config.latent_dim}", backbone, run)
    return _fit(store, model_id, run, progress)


def resume(store: Store, model_id: int, progress: Progress = quiet) -> int:
    """Continue a stopped or interrupted VAE training run from its last checkpoint."""
    _, run = run_of(store, model_id, KIND, unfinished=True)
    return _fit(store, model_id, run, progress)


def curves(store: Store, model_id: int) -> pd.DataFrame:
    """The validation curves (held-out ones for runs from before the split), and the β the training
    steps used so far (a pure function of the step)."""
    from latentviz.models.vae import beta_at

    held_out = named_curves(store, model_id, CURVES)
    if held_out.empty:
        return held_out
    run = run_of(store, model_id, KIND)[1]
    steps = np.unique(np.linspace(0, int(held_out["step"].max()), 200).astype(int))
    iwae = run.model.iw_samples > 1  # trained on the IWAE bound: β = 1 throughout, no schedule
    used = [1.0 if iwae else beta_at(int(step), run.training.steps, run.model) for step in steps]
    return pd.concat([held_out, pd.DataFrame({"step": steps, "metric": BETA_CURVE, "value": used})], ignore_index=True)


def failed_checks(figures: dict, run: VAERun) -> list[str]:
    """What the stored diagnostics say is wrong with a trained VAE, one sentence per failed check
    (empty when every check passes; models trained before a check existed skip it)."""
    failed = []
    if figures.get("collapsed"):
        failed.append(
            "Posterior collapse: the decoder ignores z (no active unit, no mutual information, or every prior "
            "sample decodes to the same sentence). Try free bits, cyclical annealing, word dropout or a smaller β."
        )
    if figures.get("overfit"):
        kept = f"; the weights kept are step {figures['kept_step']}'s" if figures.get("kept_step") else ""
        failed.append(
            f"Overfitting: validation IW-NLL (K = 5) was lowest at step {figures['best_step']} "
            f"({numbers.figure(figures['best_iw_nll_k5'])}) and ended at "
            f"{numbers.figure(figures['last_iw_nll_k5'])}{kept}."
        )
    if figures.get("kl_at_floor"):
        failed.append(
            f"KL sits at the free-bits floor ({run.model.free_bits:g} nats) in {figures['dims_at_free_bits_floor']} of "
            f"{len(figures['kl_per_dim'])} dimensions: z carries little beyond what the floor lets through for free."
        )
    if figures.get("reconstructs_poorly"):
        failed.append(
            f"Held-out sentences come back with {numbers.share(figures['held_out_word_accuracy'], 0)} of "
            "their words (greedy "
            "decoding from the posterior mean): the latent keeps what a sentence is about, not the sentence."
        )
    return failed


SUMMARY = [
    "iw_nll",
    "perplexity",
    "perplexity_unit",
    "kl",
    "active_units",
    "mutual_information",
    "collapsed",
    "overfit",
    "held_out_word_accuracy",
    "held_out",
]


def summary(store: Store) -> pd.DataFrame:
    """One row per finished VAE: id, name, dataset and its main held-out figures (SUMMARY)."""
    rows = []
    for r in models(store, KIND).itertuples():
        figures = json.loads(r.metrics or "{}")
        rows.append({"id": int(r.id), "name": r.name, "dataset": r.dataset, **{k: figures.get(k) for k in SUMMARY}})
    return pd.DataFrame(rows)


def _fit(store: Store, model_id: int, run: VAERun, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.vae import TextVAE, beta_at
    from latentviz.vocab import SPECIALS, Vocab

    training = run.training
    texts = store.texts(run.dataset)
    text_ids, vectors = texts["id"].to_numpy(), np.zeros((len(texts), 1), np.float32)
    if run.model.variant != "rnn":
        text_ids, vectors = store.vectors(pipeline.find_encoding(store, run.dataset, settings.DEFAULT_BACKBONE))
        texts = texts.set_index("id").loc[text_ids].reset_index()
    # The curves and the kept checkpoint are chosen on the validation texts; the reported figures are
    # the held-out texts', never seen in choosing. Rebuilt the same way on a resume: same split, same
    # vocabulary (from every text not held out, as before validation was split off).
    train_rows, validation_rows, held_rows = validation_split(len(texts), training.seed)
    lm_decoder = run.model.variant == "pretrained-decoder"
    seen = texts["text"].iloc[split_ids(len(texts), training.seed)[0]]
    vocab = SPECIALS if lm_decoder else Vocab.build(seen, size=run.vocab_size).tokens
    config = replace(run.model, vocab=vocab)
    torch.manual_seed(training.seed)
    model = TextVAE(config)
    if lm_decoder:
        model.attach_lm(*backbones.causal_lm(config.decoder_lm, settings.cache_dir(store.path)), fresh=True)
    folder = settings.models_dir(store.path) / str(model_id)
    store.drop_training_metrics_after(model_id, loop.checkpoint_step(folder))  # curves resume with the weights
    data = (model.vocab.encode(texts["text"].tolist(), config.max_len), torch.from_numpy(np.array(vectors)))
    validation = loop.rows(data, torch.from_numpy(validation_rows))
    held = loop.rows(data, torch.from_numpy(held_rows))
    best = _Best(folder / BEST_FOLDER)
    iwae = config.iw_samples > 1

    def on_eval(step: int, figures: dict) -> None:
        figures = {**figures, **health(model, validation)}
        store.add_training_metrics(model_id, step, "validation", figures)
        # Only weights trained at the chosen β compete: an earlier, lower-β model is not the one asked for.
        if run.keep_best and (iwae or beta_at(step - 1, training.steps, config) >= config.beta):
            best.offer(model, step, figures["iw_nll"])

    loop.fit(
        model,
        loop.rows(data, torch.from_numpy(train_rows)),
        config=training,
        held_out=validation,
        folder=folder,
        progress=lambda step, total, _: progress(step, total, f"training {config.variant} VAE"),
        on_eval=on_eval,
    )
    if run.keep_best and best.step is not None:
        model.load_state_dict(base.load(best.folder).state_dict())
    progress(training.steps, training.steps, "diagnostics: active units, mutual information, importance-weighted NLL")
    held_texts = texts["text"].iloc[held_rows].tolist()
    figures = {**diagnostics(model, held, held_texts), **overfitting(store, model_id, best, run)}
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


BEST_FOLDER = "best"  # inside a run's folder: the weights with the lowest validation IW-NLL so far


class _Best:
    """The best evaluation of a run so far, kept on disk beside its checkpoints, so a resumed run
    still knows it."""

    def __init__(self, folder):
        self.folder = folder
        saved = json.loads((folder / BEST_FILE).read_text()) if (folder / BEST_FILE).exists() else {}
        self.step, self.iw_nll = saved.get("step"), saved.get("iw_nll", float("inf"))

    def offer(self, model, step: int, iw_nll: float) -> None:
        from latentviz.models import base

        if iw_nll < self.iw_nll:
            base.save(model, self.folder)
            self.step, self.iw_nll = step, iw_nll
            (self.folder / BEST_FILE).write_text(json.dumps({"step": step, "iw_nll": iw_nll}))


OVERFIT_MARGIN = 0.01  # the validation IW-NLL ending 1% above its best means the run overfit
FLOOR_SHARE = 0.5  # KL within 10% of the free-bits floor in half the dimensions or more: held at the floor
MIN_WORD_ACCURACY = 0.3  # held-out reconstructions that keep fewer words than this have lost the sentence


def overfitting(store: Store, model_id: int, best: _Best | None = None, run: VAERun | None = None) -> dict:
    """Did the validation IW-NLL curve (K = 5) end more than 1% above its lowest point? With the best
    checkpoint (`best`, kept when the run's keep_best is on), which weights were kept."""
    curve = store.training_metrics(model_id)
    curve = curve[curve["name"] == "iw_nll"].sort_values("step")
    if curve.empty:
        return {"overfit": False}
    lowest = curve.loc[curve["value"].idxmin()]
    last = curve.iloc[-1]
    overfit = bool(last["value"] > lowest["value"] * (1 + OVERFIT_MARGIN))
    return {
        "overfit": overfit,
        "best_step": int(lowest["step"]),
        "best_iw_nll_k5": float(lowest["value"]),
        "last_iw_nll_k5": float(last["value"]),
        "kept_step": best.step if run is not None and run.keep_best and best is not None else None,
    }


def health(model, held: tuple, texts: int = 200, samples: int = 5) -> dict:
    """Cheap figures for curves during training: AU and MI over the validation texts, and an
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


def posterior_and_nll(model, held: tuple, samples: int, batch: int | None = None):
    """(posterior means, log-variances, importance-weighted NLL per sentence) of held-out sentences
    (tokens, embeddings), in their order: all at once, or `batch` at a time with similar lengths
    together (little padding; a test set of thousands of sentences)."""
    import torch

    tokens, embeddings = held
    order = torch.argsort((tokens != 0).sum(1)) if batch else torch.arange(len(tokens))
    step = batch or len(tokens)
    parts = []
    with torch.no_grad():
        for start in range(0, len(tokens), step):
            rows = order[start : start + step]
            mu, logvar = model.encode(tokens[rows], embeddings[rows])
            joint, q = model.log_weights(tokens[rows], embeddings[rows], samples=samples)
            nll = metrics.importance_weighted_nll(joint.double().cpu().numpy(), q.double().cpu().numpy())
            parts.append((mu.cpu().numpy(), logvar.cpu().numpy(), nll))
    back = np.argsort(order.cpu().numpy())  # the sentences' own order again
    return tuple(np.concatenate(part)[back] for part in zip(*parts, strict=True))


def likelihood_figures(mu: np.ndarray, logvar: np.ndarray, nll: np.ndarray, tokens: int, samples: int) -> dict:
    """The held-out likelihood and latent figures by their reference definitions (metrics.py):
    IW-NLL, perplexity over `tokens` (words and <eos>, or LM tokens), KL, active units, MI."""
    kl_dims = metrics.gaussian_kl_per_dim(mu, logvar)
    return {
        "iw_nll": float(nll.mean()),
        "iw_samples": samples,
        "perplexity": metrics.perplexity_from_nll(float(nll.sum()), tokens),
        "kl": float(kl_dims.sum()),
        "kl_per_dim": kl_dims.round(4).tolist(),
        "active_units": metrics.active_units(mu),
        "mutual_information": metrics.mutual_information(mu, logvar),
    }


def diagnostics(
    model, held: tuple, texts: list[str], samples: int = 100, prior_decodes: int = 50, reconstructions: int = 100
) -> dict:
    """Held-out figures by their reference definitions (see metrics.py), the collapse verdict, and
    checks that a live latent can still hide: KL held at the free-bits floor, and how many words of
    held-out sentences come back when decoded (greedily) from their posterior means."""
    import torch

    from latentviz import ops
    from latentviz.vocab import words

    model.eval()
    mu, logvar, nll = posterior_and_nll(model, held, samples)
    with torch.no_grad():
        prior = model.decode(
            torch.randn(prior_decodes, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
        )
        decoded = model.decode(torch.from_numpy(mu[:reconstructions]))
    lm_decoder = model.config.variant == "pretrained-decoder"
    tokens = int((held[0][:, 1:] != 0).sum())  # the decoder's targets: words and <eos>, or LM tokens and EOS
    figures = likelihood_figures(mu, logvar, nll, tokens, samples)
    kl_dims = metrics.gaussian_kl_per_dim(mu, logvar)  # unrounded, for the floor check
    au, mi, kl = figures["active_units"], figures["mutual_information"], figures["kl"]
    mi_bound = metrics.mutual_information_bound(len(mu))
    distinct = len(set(prior))
    # Collapsed: no unit carries information, or every prior sample decodes to (nearly) the same sentence.
    collapsed = au == 0 or kl < 0.1 or mi < 0.05 or distinct <= 2
    floor = model.config.free_bits
    at_floor = int((np.abs(kl_dims - floor) <= 0.1 * floor).sum()) if floor > 0 else 0
    accuracy = [
        max(0.0, 1 - ops.edit_distance(words(text), words(out)) / max(1, len(words(text))))
        for text, out in zip(texts, decoded, strict=False)
    ]
    return {
        **figures,
        "perplexity_unit": "LM token" if lm_decoder else "word",
        "mi_batch": metrics.MI_BATCH,
        "mi_bound": mi_bound,
        "mi_saturated": bool(mi > 0.9 * mi_bound),
        "prior_decode_diversity": distinct / len(prior),
        "collapsed": bool(collapsed),
        "dims_at_free_bits_floor": at_floor,
        "kl_at_floor": bool(floor > 0 and at_floor >= FLOOR_SHARE * len(kl_dims)),
        "held_out_word_accuracy": float(np.mean(accuracy)),
        "reconstructs_poorly": bool(np.mean(accuracy) < MIN_WORD_ACCURACY),
        "held_out": len(mu),
    }
