"""Evaluations of SAEs the field can compare, stored with each model: SAEBench's core set with bootstrap
intervals (core.py), sparse probing (probing.py), absorption (absorption.py), scored feature labels
(labels.py), LLM explanations scored by detection and fuzzing (explanations.py), SAE ↔ SAE matching
(matching.py), and the L0–FVU frontier of every SAE that reads the same activations."""

from __future__ import annotations

import time

import pandas as pd

from latentviz import backbones, runs, settings
from latentviz.errors import LatentvizError
from latentviz.evals import absorption, core, explanations, labels, probing
from latentviz.evals.matching import compare
from latentviz.features.reads import load_sae
from latentviz.progress import Progress, quiet
from latentviz.steps import EVALUATE, Evaluate
from latentviz.store import Store

__all__ = ["compare", "evaluate", "frontier"]


def evaluate(store: Store, spec: Evaluate = EVALUATE, progress: Progress = quiet) -> dict[str, dict]:
    """Run the chosen evaluations of SAE `spec.model` and store each with the time it took and the tokens
    (core), texts (probing, labels), words (absorption) or LLM prompts (explanations) it read: {name:
    figures, with "seconds"}."""
    found = {}
    for name in spec.evaluations:
        started = time.perf_counter()
        try:
            figures, amount = _run(name, store, spec, progress)
        except LatentvizError as error:  # one that cannot run here is recorded as such; the others still run
            figures, amount = {"not_measured": str(error).splitlines()[0]}, 0
        seconds = time.perf_counter() - started
        store.set_evaluation(spec.model, name, figures, seconds, amount)
        found[name] = dict(figures, seconds=seconds)
    return found


def _run(name: str, store: Store, spec: Evaluate, progress: Progress) -> tuple[dict, int]:
    """(figures, tokens or texts or words read) of one evaluation."""
    if name == "core":
        figures = _core(store, spec, progress)
        return figures, figures["predicted_tokens"]
    if name == "probing":
        return probing.evaluate(store, spec.model, spec.probe_datasets, spec.probe_train, spec.probe_test, progress)
    if name == "absorption":
        return absorption.evaluate(store, spec.model, spec.absorption_words, progress)
    if name == "explanations":
        return explanations.evaluate(store, spec.model, spec.explainer, spec.explain_features, progress)
    return labels.evaluate(store, spec.model, progress)


def _core(store: Store, spec: Evaluate, progress: Progress) -> dict:
    row, sae = load_sae(store, spec.model)
    dataset, texts = core.held_out_texts(store, row, spec.texts, spec.dataset)
    run = runs.from_record(row)
    lm, tokenizer = backbones.causal_lm(row["backbone"], settings.cache_dir(store.path))
    figures = core.evaluate(
        lm,
        tokenizer,
        texts,
        sae,
        keep_sinks=run.keep_sinks,
        prepend_bos=run.prepend_bos,
        resamples=spec.resamples,
        progress=progress,
    )
    return dict(figures, dataset=dataset)


def frontier(store: Store, model_id: int) -> pd.DataFrame:
    """Every SAE reading the same LM, layer and site as this one, with its L0 and FVU (the core
    evaluation's where it has one, else its training's held-out figures): id, name, architecture, d_sae,
    l0, fvu, measured ("evaluation" or "training")."""
    reference = runs.from_record(store.trained_model(model_id, "sae", "SAE"))
    evaluated = store.evaluations().query("name == 'core'").set_index("model_id")["figures"]
    where = (reference.backbone, reference.model.layer, reference.model.site)
    rows = []
    for other_id in store.models().query("kind == 'sae' and checkpoint.notna()")["id"]:
        model = store.model(int(other_id))
        run = runs.from_record(model)
        if (run.backbone, run.model.layer, run.model.site) != where:
            continue
        evaluation = evaluated.get(model["id"], {})
        measured = "evaluation" if "fvu" in evaluation else "training"  # not an evaluation that was not measured
        figures = evaluation if measured == "evaluation" else model["metrics"]
        if "l0" in figures and "fvu" in figures:
            rows.append(
                {
                    "id": int(model["id"]),
                    "name": model["name"],
                    "architecture": run.model.architecture,
                    "d_sae": run.model.d_sae,
                    "l0": figures["l0"],
                    "fvu": figures["fvu"],
                    "measured": measured,
                }
            )
    return pd.DataFrame(rows, columns=["id", "name", "architecture", "d_sae", "l0", "fvu", "measured"])
