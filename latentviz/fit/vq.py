"""Train, resume and evaluate a discrete-latent (VQ) model: on a dataset's stored sentence
vectors, or on a causal LM's per-token hidden states (one code per token)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from latentviz import backbones, metrics, pipeline, settings
from latentviz import train as loop
from latentviz.fit.common import add_run, held_out_split, run_of
from latentviz.fit.common import curves as named_curves
from latentviz.progress import Progress, quiet
from latentviz.runs import VQRun
from latentviz.store import Store, StoreError

KIND = "vq"
CURVES = {
    "perplexity": "perplexity",
    "used": "utilisation",
    "ema_dead": "dead (EMA rule)",
    "reconstruction": "reconstruction",
}


def train(store: Store, run: VQRun, progress: Progress = quiet) -> int:
    """Train a VQ model and store its run, curves, codes and held-out figures; returns the model id."""
    pipeline.require_dataset(store, run.dataset)
    if run.tokens:
        model = pipeline.backbone(store, run.backbone)
        run = replace(run, layer=backbones.check_layer(model, run.layer))
        config = replace(run.model, d_in=model.dim, groups=1)
    else:
        encoding = store.encoding(pipeline.find_encoding(store, run.dataset, run.backbone))
        config = replace(run.model, d_in=int(encoding["dim"]))
    run = replace(run, model=config)
    unit = f" tokens L{run.layer}" if run.tokens else ""
    model_id = add_run(store, KIND, f"{config.quantizer} K={config.size}{unit}", run.backbone, run)
    return _fit(store, model_id, run, progress)


def resume(store: Store, model_id: int, progress: Progress = quiet) -> int:
    """Continue an interrupted VQ training run from its last checkpoint."""
    _, run = run_of(store, model_id, KIND, unfinished=True)
    return _fit(store, model_id, run, progress)


def curves(store: Store, model_id: int) -> pd.DataFrame:
    """Held-out perplexity, utilisation (used codes / K), dead codes by the EMA rule, reconstruction."""
    size = run_of(store, model_id, KIND)[1].model.size
    rows = named_curves(store, model_id, CURVES)
    used = rows["metric"] == "utilisation"
    return rows.assign(value=rows["value"].where(~used, rows["value"] / size))


def usage_figures(codes: np.ndarray, size: int) -> dict:
    """Codebook use of held-out codes (N, code positions, stages) out of `size` (metrics.codebook_usage).
    The headline is the first stage's codebook: code k of stage 1 and code k of stage 2 are different
    vectors, so pooling the stages would overstate use. Residual VQ adds each stage's figures, and the
    pooled ones under names that say so."""
    figures = metrics.codebook_usage(codes[:, :, 0], size)
    if codes.shape[2] > 1:
        for stage in range(codes.shape[2]):
            usage = metrics.codebook_usage(codes[:, :, stage], size)
            figures.update({f"stage{stage + 1}_{k}": v for k, v in usage.items() if k != "codebook_size"})
        pooled = metrics.codebook_usage(codes, size)
        figures.update({f"pooled_{k}": v for k, v in pooled.items() if k != "codebook_size"})
    return figures


def _data(store: Store, run: VQRun, progress: Progress):
    """(text id per row, token positions or None, token strings or None, vectors) to train on."""
    if not run.tokens:
        text_ids, vectors = store.vectors(pipeline.find_encoding(store, run.dataset, run.backbone))
        return text_ids, None, None, np.array(vectors)  # a writable copy: the store hands out read-only arrays
    texts = store.texts(run.dataset)
    rows, positions, tokens, vectors = backbones.token_states(
        pipeline.backbone(store, run.backbone),
        texts["text"].tolist(),
        layer=run.layer,
        max_tokens=run.max_tokens,
        progress=lambda done, total, _: progress(done, total, "capturing token activations"),
    )
    # Unit length: a few tokens with huge norms (SmolLM2's attention sinks) would otherwise own the codebook.
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return texts["id"].to_numpy()[rows], positions, tokens, vectors


def _fit(store: Store, model_id: int, run: VQRun, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.vq import SentenceVQ

    config, training = run.model, run.training
    text_ids, positions, tokens, vectors = _data(store, run, progress)
    if len(text_ids) < 20:
        raise StoreError(
            f"dataset {run.dataset!r} gives {len(text_ids)} vectors to train on; a VQ model needs at least 20"
        )
    torch.manual_seed(training.seed)
    model = SentenceVQ(config)
    folder = settings.models_dir(store.path) / str(model_id)
    store.drop_training_metrics_after(model_id, loop.checkpoint_step(folder))  # curves resume with the weights
    train_rows, held_rows = held_out_split(text_ids, training.seed)
    x = torch.from_numpy(vectors)
    loop.fit(
        model,
        x[train_rows],
        config=training,
        held_out=x[held_rows],
        folder=folder,
        progress=lambda step, total, _: progress(step, total, f"training {config.quantizer}"),
        on_eval=lambda step, figures: store.add_training_metrics(model_id, step, "held_out", figures),
    )
    model.eval()
    codes = model.codes(x).numpy()
    codes = codes.reshape(len(codes), config.groups, -1)  # (N, groups, stages)
    store.add_codes(model_id, text_ids, codes, positions, tokens)
    held = codes[held_rows]
    figures = {
        **usage_figures(held, config.size),
        "reconstruction": loop.evaluate(model, x[held_rows])["reconstruction"],
        "held_out": len(held_rows),
        "held_out_texts": len(np.unique(text_ids[held_rows])),
    }
    labels = store.texts(run.dataset).set_index("id").loc[text_ids[held_rows], "label"]
    if labels.notna().all():
        first_codes = held[:, 0, 0]  # the first slot's code, against the label
        figures.update(
            {
                "nmi": metrics.nmi(first_codes, labels.to_numpy()),
                "purity": metrics.purity(first_codes, labels.to_numpy()),
            }
        )
    base.save(model, folder)
    store.finish_model(model_id, str(folder), figures)
    progress(training.steps, training.steps, f"model {model_id} ready")
    return model_id
