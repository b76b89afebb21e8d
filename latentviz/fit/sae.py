"""Train, resume and evaluate a sparse autoencoder on captured LM activations: held-out
reconstruction figures and the LM's next-token loss with the reconstruction spliced in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from latentviz import activations, architectures, backbones, distributed, metrics, numbers, runs, settings
from latentviz import train as loop
from latentviz.errors import ConfigError
from latentviz.fit.common import add_run, held_out_split, run_of
from latentviz.fit.common import curves as named_curves
from latentviz.progress import Progress, quiet
from latentviz.runs import SAERun
from latentviz.steps import Engine, ExportSAE, ImportSAE
from latentviz.store import Store, StoreError

KIND = "sae"
CURVES = {"fvu": "FVU", "l0": "L0", "mse": "MSE"}
CE_TEXTS = 32  # held-out texts whose next-token loss is measured with the reconstruction spliced in
# A run whose held-out FVU ends this much above its best, or that left this share of its latents dead,
# was most likely trained at too high a learning rate. At the defaults 0.3–9% were dead; at 2.5× the
# best rate on SmolLM2 layer 16's MLP output 47% did (bench/sae_defaults.py, docs/benchmarks.md).
FVU_RISE, DEAD_SHARE = 1.1, 0.25


def train(store: Store, run: SAERun, progress: Progress = quiet) -> int:
    """Capture (or reuse) the run's activations, train an SAE on 90% of the texts' tokens, and store
    its run, curves and held-out figures. Returns the model id."""
    if run.layer is not None and run.layer < 1:  # its CE loss recovered needs a block output to splice into
        raise ConfigError("an SAE reads the output of a block: pick a layer of 1 or more (layer 0 is the embeddings)")
    # before any capture or training: its dashboards read the LM's final norm and unembedding
    architectures.of(
        backbones.shared(run.backbone, settings.cache_dir(store.path)).model,
        "final norm and unembedding, which an SAE's feature dashboards read",
        "a token VQ codebook reads any model's block outputs",
    )
    # under torchrun process 0 captures (or finds) the activations and adds the run; all read them
    (capture_id,) = distributed.broadcast([capture(store, run, progress) if distributed.is_main() else 0])
    layer = int(store.capture(capture_id)["layer"])
    text_ids, states = activations.load(store, capture_id)
    texts = len(np.unique(text_ids))
    if texts < 10:
        raise StoreError(f"dataset {run.dataset!r} gives tokens from {texts} texts; an SAE needs at least 10")
    run = replace(
        run,
        layer=layer,
        model=replace(run.model, d_in=states.shape[1], layer=layer, site=run.site, model_name=run.backbone),
    )
    run = replace(run, training=replace(run.training, lr=runs.sae_lr(run)))  # stored as used: resume keeps it
    where = f"L{layer}" + ("" if run.site == "resid_post" else f" {run.site}")
    name = f"{run.model.architecture} SAE {run.model.d_sae} {where}"
    model_id = add_run(store, KIND, name, run.backbone, run, capture=capture_id) if distributed.is_main() else 0
    (model_id,) = distributed.broadcast([model_id])
    return _fit(store, model_id, run, text_ids, states, progress)


def capture(store: Store, run: SAERun, progress: Progress = quiet, engine: Engine | None = None) -> int:
    """Capture (or reuse) the activations the run reads: its LM, layer, site, tokens and sinks (on
    `engine`: this process or a Ray cluster)."""
    return activations.capture(
        store,
        run.dataset,
        run.backbone,
        run.layer,
        site=run.site,
        max_tokens=run.max_tokens,
        mask_sinks=not run.keep_sinks,
        prepend_bos=run.prepend_bos,
        engine=engine,
        progress=progress,
    )


def resume(store: Store, model_id: int, progress: Progress = quiet) -> int:
    """Continue a stopped or interrupted SAE training run from its last checkpoint."""
    row, run = run_of(store, model_id, KIND, unfinished=True)
    return _fit(store, model_id, run, *activations.load(store, runs.facts(row)["capture"]), progress)


def curves(store: Store, model_id: int) -> pd.DataFrame:
    return named_curves(store, model_id, CURVES)


def import_folder(store: Store, spec: ImportSAE) -> tuple[int, object, str]:
    """Add an SAE saved in the SAELens or Gemma Scope layout to the workspace, as a finished model with its own
    checkpoint: (model id, the SAE, the hook it reads, in words)."""
    from latentviz import saelens
    from latentviz.models import base

    sae, where = saelens.read(
        spec.path,
        layer=spec.layer,
        site=spec.site,
        backbone=spec.backbone,
        norm_scaling_factor=spec.norm_scaling_factor,
    )
    if spec.dataset and not store.has_dataset(spec.dataset):
        raise StoreError(f"no dataset named {spec.dataset!r}; see `latentviz info`")
    config = sae.config
    run = SAERun(
        dataset=spec.dataset or "",
        backbone=config.model_name,
        layer=config.layer,
        site=config.site,
        prepend_bos=where.prepend_bos,
        model=config,
    )
    name = spec.name or f"imported {Path(spec.path).name}"
    model_id = add_run(store, KIND, name, config.model_name, run, imported_from=str(spec.path))
    folder = base.save(sae, settings.models_dir(store.path) / str(model_id))
    store.finish_model(model_id, str(folder), {"imported": True})
    return model_id, sae, where


def export_folder(store: Store, spec: ExportSAE) -> Path:
    """Write a trained SAE in the SAELens layout, saying truly whether its LM ran with a BOS first."""
    from latentviz import saelens
    from latentviz.models import base

    row = store.trained_model(spec.model, KIND, "SAE")
    run = runs.from_record(row)
    prepend_bos = run.prepend_bos
    if prepend_bos is None:  # as its tokenizer does
        prepend_bos = backbones.adds_bos(backbones.load_tokenizer(run.backbone, settings.cache_dir(store.path)))
    return saelens.export(base.load(row["checkpoint"]), spec.out, prepend_bos=prepend_bos)


def _fit(store: Store, model_id: int, run: SAERun, text_ids: np.ndarray, states: np.ndarray, progress: Progress) -> int:
    import torch

    from latentviz.models import base
    from latentviz.models.sae import SparseAutoencoder

    training = run.training
    train_rows, held_rows = held_out_split(text_ids, training.seed)  # by text: no sentence is half seen
    torch.manual_seed(training.seed)
    sae = SparseAutoencoder(run.model)
    x = torch.from_numpy(states)
    folder = settings.models_dir(store.path) / str(model_id)
    main = distributed.is_main()  # the one process that writes to the workspace
    if main:
        store.drop_training_metrics_after(model_id, loop.checkpoint_step(folder))  # curves resume with the weights
    history = loop.fit(
        sae,
        x[train_rows],
        config=training,
        held_out=x[held_rows],
        folder=folder,
        progress=lambda step, total, _: progress(step, total, f"training {run.model.architecture} SAE"),
        on_eval=lambda step, figures: store.add_training_metrics(model_id, step, "held_out", figures),
    )
    if not main:
        return model_id
    progress(training.steps, training.steps, "held-out figures and the spliced-in next-token loss")
    warning = rate_warning(history, training.lr)
    held_texts = np.unique(text_ids[held_rows])[:CE_TEXTS]
    held_text_list = store.texts(run.dataset).set_index("id").loc[held_texts, "text"].tolist()
    figures = held_out_figures(store, sae, x[held_rows], held_text_list, run)
    if warning:
        figures["warning"] = warning
    base.save(sae, folder)
    store.finish_model(model_id, str(folder), figures)
    return model_id


def rate_warning(history: list[dict], lr: float) -> str | None:
    """One line when a run's own held-out curves say its learning rate was far too high (FVU rising
    from its best, or many latents dead), else None."""
    if not history:
        return None
    best = min(history, key=lambda row: row["fvu"])
    last = history[-1]
    dead = max(row.get("dead", 0.0) for row in history)
    if last["fvu"] > FVU_RISE * best["fvu"]:
        found = (
            f"held-out FVU rose from {numbers.figure(best['fvu'])} (step "
            f"{numbers.count(best['step'])}) to {numbers.figure(last['fvu'])}"
        )
    elif dead >= DEAD_SHARE:
        found = f"{numbers.share(dead, 0)} of the latents went dead"
    else:
        return None
    return f"{found}: the learning rate {lr:g} is likely too high for these activations; try {lr / 3:.1g}"


def reconstruction_figures(x, encode, decode, batch: int | None = None) -> dict:
    """An SAE's reconstruction figures on held-out activations x (tokens, d_in) by their reference
    definitions (metrics.py), for any encode and decode (ours, or another library's loaded SAE), `batch`
    tokens at a time or all at once."""
    import torch

    step = batch or len(x)
    with torch.no_grad():
        f = torch.cat([encode(x[i : i + step]) for i in range(0, len(x), step)])
        x_hat = torch.cat([decode(f[i : i + step]) for i in range(0, len(f), step)])
    f, x_hat, x = f.numpy(), x_hat.numpy(), x.numpy()
    counts = metrics.firing_counts(f)
    hist, edges = metrics.log_density_histogram(counts, len(x))
    return {
        "l0": metrics.l0(f),
        "fvu": metrics.fraction_of_variance_unexplained(x, x_hat),
        "explained_variance": metrics.explained_variance(x, x_hat),
        "cosine": metrics.mean_cosine(x, x_hat),
        "dead_latents": metrics.dead_latents(counts),
        "dead_window_tokens": len(x),
        "density_histogram": {"counts": hist.tolist(), "log10_edges": edges.round(3).tolist()},
    }


def held_out_figures(store: Store, sae, held, texts: list[str], run: SAERun) -> dict:
    """Held-out reconstruction figures, and the LM's next-token loss with the SAE's reconstruction
    spliced in at its layer and site, against clean and zero-ablated runs."""
    sae.eval()
    lm, tokenizer = backbones.causal_lm(run.backbone, settings.cache_dir(store.path))
    ce = spliced_losses(lm, tokenizer, texts, sae, keep_sinks=run.keep_sinks, prepend_bos=run.prepend_bos)
    return {
        **reconstruction_figures(held, sae.encode, sae.decode),
        **ce,
        "ce_loss_recovered": metrics.ce_loss_recovered(ce["ce_clean"], ce["ce_sae"], ce["ce_zero_ablation"]),
        "delta_lm_loss": metrics.delta_lm_loss(ce["ce_clean"], ce["ce_sae"]),
        "ce_texts": len(texts),
        "held_out_tokens": len(held),
    }


def replaced_positions(flat, text, keep_sinks: bool):
    """The positions (rows of a (tokens, d) block output) the SAE stands in for: the texts' own tokens
    (`text`: no padding, BOS or other special token), less the attention sinks when it was trained
    without them, found among those tokens as the capture found them (it never learnt to rebuild either)."""
    import torch

    replace = text.clone()
    if not keep_sinks:
        replace[text] = ~torch.from_numpy(activations.sink_mask(flat[text].float().cpu().numpy())).to(flat.device)
    return replace


def spliced_losses(
    lm, tokenizer, texts: list[str], sae, keep_sinks: bool, prepend_bos: bool | None = None
) -> dict[str, float]:
    """Next-token loss of the LM clean, with the SAE's reconstruction spliced in at its layer and site,
    and with zeros there instead. The zero run ablates exactly the positions the SAE replaces, so CE
    loss recovered compares the two on the same positions."""
    import torch

    def splice(fill):
        def replace_hidden(hidden, text):
            flat = hidden.reshape(-1, hidden.shape[-1])
            replace = replaced_positions(flat, text.flatten(), keep_sinks)
            return torch.where(replace[:, None], fill(flat).to(flat.dtype), flat).view_as(hidden)

        return replace_hidden

    layer, site = sae.config.layer, sae.config.site
    reconstruct = splice(lambda h: sae.decode(sae.encode(h.float().cpu())).to(h.device))
    with torch.no_grad():
        return {
            "ce_clean": backbones.next_token_loss(lm, tokenizer, texts, layer, prepend_bos=prepend_bos),
            "ce_sae": backbones.next_token_loss(
                lm, tokenizer, texts, layer, reconstruct, site=site, prepend_bos=prepend_bos
            ),
            "ce_zero_ablation": backbones.next_token_loss(
                lm, tokenizer, texts, layer, splice(torch.zeros_like), site=site, prepend_bos=prepend_bos
            ),
        }
