"""SAEBench's core evaluation with uncertainty: the LM's next-token loss and prediction with the SAE's
reconstruction spliced in (CE loss recovered, KL divergence), the reconstruction's shrinkage, L0 and
FVU, all on held-out texts, with percentile bootstrap intervals over the texts."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import torch

from latentviz import backbones, metrics, runs, settings
from latentviz.errors import LatentvizError
from latentviz.fit.common import held_out_split
from latentviz.progress import Progress, quiet
from latentviz.store import Store

BATCH = 8  # texts per forward pass

# -- each statistic is a ratio of sums over the texts; its arguments name the per-text columns it reads


def ce_loss_score(ce_clean, ce_sae, ce_zero, tokens):
    return metrics.ce_loss_recovered(
        ce_clean.sum() / tokens.sum(), ce_sae.sum() / tokens.sum(), ce_zero.sum() / tokens.sum()
    )


def delta_lm_loss(ce_clean, ce_sae, tokens):
    return (ce_sae.sum() - ce_clean.sum()) / tokens.sum()


def kl_div_score(kl_sae, kl_zero):  # the token counts cancel
    return metrics.kl_div_score(kl_sae.sum(), kl_zero.sum())


def kl_div_with_sae(kl_sae, tokens):
    return kl_sae.sum() / tokens.sum()


def relative_reconstruction_bias(x_hat_sq, x_dot_x_hat):  # E‖x̂‖² / E[x·x̂] over the same tokens
    return x_hat_sq.sum() / x_dot_x_hat.sum()


# the figures given with a 95% bootstrap interval over the texts (stored as NAME_interval)
STATISTICS = (ce_loss_score, delta_lm_loss, kl_div_score, kl_div_with_sae, relative_reconstruction_bias)
WITH_INTERVALS = tuple(statistic.__name__ for statistic in STATISTICS)


def held_out_texts(store: Store, row: dict, count: int, dataset: str | None = None) -> tuple[str, list[str]]:
    """(dataset, up to `count` texts) an SAE never trained on: its own held-out split when it was trained
    on that dataset's capture, else texts of the dataset drawn with the fixed seed."""
    run = runs.from_record(row)
    dataset = dataset or run.dataset
    if not dataset:
        raise LatentvizError(f"SAE {row['id']} belongs to no dataset: name one to evaluate it on with --dataset")
    texts = store.texts(dataset)
    if texts.empty:
        raise LatentvizError(f"no dataset named {dataset!r}; see `latentviz info`")
    capture_id = runs.facts(row).get("capture")
    if capture_id is not None and dataset == run.dataset:
        text_ids = store.capture_tokens(capture_id)["text_id"].to_numpy()
        _, held_rows = held_out_split(text_ids, run.training.seed)
        chosen = np.unique(text_ids[held_rows])
    else:
        chosen = np.random.default_rng(settings.SEED).permutation(texts["id"].to_numpy())
    by_id = texts.set_index("id")["text"]
    return dataset, by_id.loc[chosen[:count]].tolist()


def evaluate(
    lm,
    tokenizer,
    texts: list[str],
    sae,
    *,
    keep_sinks: bool,
    prepend_bos: bool | None,
    resamples: int,
    progress: Progress = quiet,
) -> dict:
    """The core figures of `sae` on `texts`, each ratio with a 95% bootstrap interval over the texts."""
    t = spliced_statistics(lm, tokenizer, texts, sae, keep_sinks, prepend_bos, progress)

    figures = {}
    for statistic in STATISTICS:
        units = {name: t[name] for name in inspect.signature(statistic).parameters}
        figures[statistic.__name__] = float(statistic(**units))
        figures[f"{statistic.__name__}_interval"] = list(
            metrics.bootstrap_interval(statistic, units, resamples=resamples)
        )
    spliced = t["spliced"].sum()
    variance = t["x_sq"].sum() - float((t["x_sum"] ** 2).sum()) / spliced  # Σ‖x − x̄‖²
    tokens = t["tokens"].sum()
    figures.update(
        ce_clean=t["ce_clean"].sum() / tokens,
        ce_sae=t["ce_sae"].sum() / tokens,
        ce_zero_ablation=t["ce_zero"].sum() / tokens,
        kl_div_with_ablation=t["kl_zero"].sum() / tokens,
        l0=t["l0"].sum() / spliced,
        fvu=t["error_sq"].sum() / variance,
        texts=len(texts),
        predicted_tokens=int(tokens),
        spliced_tokens=int(spliced),
        resamples=resamples,
    )
    return {name: float(value) if isinstance(value, np.floating) else value for name, value in figures.items()}


PER_TEXT = (
    "tokens",
    "ce_clean",
    "ce_sae",
    "ce_zero",
    "kl_sae",
    "kl_zero",
    "spliced",
    "x_hat_sq",
    "x_dot_x_hat",
    "error_sq",
    "x_sq",
    "l0",
)


def spliced_statistics(lm, tokenizer, texts, sae, keep_sinks, prepend_bos, progress=quiet) -> dict[str, np.ndarray]:
    """Per text: predicted tokens, summed next-token loss clean / with the reconstruction spliced in /
    with zeros there, summed KL of each spliced prediction from the clean one, and over the positions
    the SAE stands in for: their count, Σ‖x̂‖², Σ x·x̂, Σ‖x − x̂‖², Σ‖x‖², Σ L0; and x_sum, Σx over all
    of them (for FVU's mean). Clean, spliced and zeroed runs see the same batches."""
    from latentviz.fit.sae import replaced_positions

    n, d = len(texts), sae.config.d_in
    t = {name: np.zeros(n) for name in PER_TEXT}
    t["x_sum"] = np.zeros(d)
    forwards = itertools.count()  # the spliced run's forward passes: which batch the hook is in

    def owners(hidden, replace):
        first = next(forwards) * BATCH
        rows = torch.arange(first, first + hidden.shape[0]).repeat_interleave(hidden.shape[1])
        return rows[replace.cpu()].numpy()

    def reconstruct(hidden, text):
        flat = hidden.reshape(-1, hidden.shape[-1])
        replace = replaced_positions(flat, text.flatten(), keep_sinks)
        x = flat[replace].float().cpu()
        f = sae.encode(x)
        x_hat = sae.decode(f)
        rows = owners(hidden, replace)
        x64, x_hat64 = x.double().numpy(), x_hat.double().numpy()
        for name, values in (
            ("spliced", np.ones(len(rows))),
            ("x_hat_sq", (x_hat64**2).sum(1)),
            ("x_dot_x_hat", (x64 * x_hat64).sum(1)),
            ("error_sq", ((x64 - x_hat64) ** 2).sum(1)),
            ("x_sq", (x64**2).sum(1)),
            ("l0", (f != 0).sum(1).numpy()),
        ):
            np.add.at(t[name], rows, values)
        t["x_sum"] += x64.sum(0)
        out = flat.clone()
        out[replace] = x_hat.to(flat.device, flat.dtype)
        return out.view_as(hidden)

    def zero(hidden, text):
        flat = hidden.reshape(-1, hidden.shape[-1])
        replace = replaced_positions(flat, text.flatten(), keep_sinks)
        return torch.where(replace[:, None], torch.zeros_like(flat), flat).view_as(hidden)

    layer, site = sae.config.layer, sae.config.site

    def run(replace):
        return backbones.next_token_logits(lm, tokenizer, texts, layer, replace, BATCH, site, prepend_bos)

    batches = -(-n // BATCH)
    with torch.no_grad():
        for i, ((clean, targets), (spliced, _), (zeroed, _)) in enumerate(
            zip(run(None), run(reconstruct), run(zero), strict=True)
        ):
            rows = np.arange(i * BATCH, i * BATCH + len(targets))
            predicted = targets != -100
            for name, logits in (("ce_clean", clean), ("ce_sae", spliced), ("ce_zero", zeroed)):
                loss = torch.nn.functional.cross_entropy(
                    logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
                )
                t[name][rows] = loss.sum(1).double().cpu().numpy()
            for name, logits in (("kl_sae", spliced), ("kl_zero", zeroed)):
                kl = metrics.kl_divergence(clean, logits) * predicted
                t[name][rows] = kl.sum(1).double().cpu().numpy()
            t["tokens"][rows] = predicted.sum(1).cpu().numpy()
            progress(i + 1, batches, "the LM clean, with the SAE spliced in, and with zeros there")
    return t
