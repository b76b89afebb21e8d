"""Sparse probing (Kantamneni et al., 2025, the `sae-probes` benchmark; SAEBench): can a logistic probe
on a few SAE latents tell a concept apart as well as one on the dense activations?

For each binary task (labelled texts): the LM's activation at each text's last token, at the SAE's
layer and site; a class-balanced training and test split; the k latents whose means differ most
between the classes on the training split, each latent first divided by its mean non-zero activation
(sae-probes's "mean" normalisation, so a latent's scale does not choose it); an L2 logistic probe on
those k latents, its C chosen from 10⁵…10⁻⁵ by validation AUC on the training split; test accuracy
and AUC. The same probe on the dense activations is the baseline.

Tasks: datasets that the `sae-probes` package ships inside its wheel (read in place; install it with
`pip install --no-deps sae-probes==0.4.2`), and the corpus's own labels, one against the rest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentviz import backbones, runs, settings
from latentviz.errors import LatentvizError
from latentviz.features.reads import load_sae
from latentviz.progress import Progress, quiet
from latentviz.steps import EVALUATE
from latentviz.store import Store

INSTALL = "pip install --no-deps sae-probes==0.4.2"
KS = (1, 2, 5, 20)
CS = np.logspace(5, -5, 10)  # the probe's inverse regularisation, as sae-probes sweeps it


def sae_probes_data() -> Path:
    """The folder of labelled text sets inside the installed sae-probes package."""
    return backbones.package_dir("sae_probes", INSTALL) / "data" / "cleaned_data"


def read_task(name: str) -> tuple[list[str], np.ndarray]:
    """(prompts, 0/1 labels) of one sae-probes dataset, e.g. "92_glue_sst2"."""
    path = sae_probes_data() / f"{name}.csv.zst"
    if not path.exists() or path.resolve().parent != sae_probes_data().resolve():  # a name, not a path
        raise LatentvizError(f"sae-probes has no dataset {name!r}; its names are the files in {path.parent}")
    frame = pd.read_csv(path, compression="zstd")
    classes = sorted(frame["target"].unique())
    if len(classes) != 2:
        raise LatentvizError(f"sae-probes dataset {name!r} is not binary")
    return frame["prompt"].astype(str).tolist(), (frame["target"] == classes[1]).to_numpy(np.int64)


def corpus_tasks(store: Store, dataset: str, minimum: int) -> list[tuple[str, list[str], np.ndarray]]:
    """One task per label of a dataset with at least `minimum` texts of it: that label against the rest."""
    texts = store.texts(dataset).dropna(subset=["label"])
    tasks = []
    for label, count in texts["label"].value_counts().items():
        if count >= minimum and len(texts) - count >= minimum:
            tasks.append((f"{dataset}: {label}", texts["text"].tolist(), (texts["label"] == label).to_numpy(np.int64)))
    return tasks


def balanced_split(y: np.ndarray, train: int, test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows, half of each class in each (as far as the smaller class allows)."""
    rng = np.random.default_rng(seed)
    positive, negative = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    per_class = min(len(positive), len(negative))
    train_half = min(train // 2, per_class // 2)
    test_half = min(test // 2, per_class - train_half)
    train_rows = np.concatenate([positive[:train_half], negative[:train_half]])
    test_rows = np.concatenate(
        [positive[train_half : train_half + test_half], negative[train_half : train_half + test_half]]
    )
    return rng.permutation(train_rows), rng.permutation(test_rows)


def select_latents(f_train: np.ndarray, y_train: np.ndarray, k: int, positive: bool = False) -> np.ndarray:
    """The k latents whose class means differ most (|mean₁ − mean₀|; with `positive`, mean₁ − mean₀:
    latents that fire for the class), each latent divided first by its mean non-zero |activation| on the
    training split."""
    f = np.abs(f_train).sum(0) / ((f_train != 0).sum(0) + 1e-6)
    normalised = f_train / (f + 1e-6)
    difference = normalised[y_train == 1].mean(0) - normalised[y_train == 0].mean(0)
    return np.argsort(-(difference if positive else np.abs(difference)), kind="stable")[:k]


def fit_probe(x_train, y_train, x_test, y_test, seed: int = settings.SEED) -> dict[str, float]:
    """An L2 logistic probe, C chosen by validation AUC (the training split's last fifth, at most 100
    rows, as sae-probes holds out), refitted on the whole training split: test accuracy and AUC."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    held = min(int(0.2 * len(x_train)), 100)
    fit_rows, val_rows = slice(0, len(x_train) - held), slice(len(x_train) - held, len(x_train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # large C on separable data: the fit is still usable
        scores = []
        for c in CS:
            probe = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(x_train[fit_rows], y_train[fit_rows])
            scores.append(roc_auc_score(y_train[val_rows], probe.predict_proba(x_train[val_rows])[:, 1]))
        best = CS[int(np.argmax(scores))]
        probe = LogisticRegression(C=best, max_iter=1000, random_state=seed).fit(x_train, y_train)
    return {
        "accuracy": float(accuracy_score(y_test, probe.predict(x_test))),
        "auc": float(roc_auc_score(y_test, probe.predict_proba(x_test)[:, 1])),
    }


def probe_task(dense_train, dense_test, f_train, f_test, y_train, y_test, ks=KS) -> dict:
    """The dense baseline and the k-sparse SAE probes of one task."""
    found = {"dense": fit_probe(dense_train, y_train, dense_test, y_test)}
    for k in ks:
        chosen = select_latents(f_train, y_train, k)
        found[f"k={k}"] = {
            **fit_probe(f_train[:, chosen], y_train, f_test[:, chosen], y_test),
            "latents": chosen.tolist(),
        }
    return found


def evaluate(
    store: Store,
    model_id: int,
    datasets: list[str] = EVALUATE.probe_datasets,
    train: int = EVALUATE.probe_train,
    test: int = EVALUATE.probe_test,
    progress: Progress = quiet,
) -> tuple[dict, int]:
    """Sparse probing of one SAE on the named sae-probes datasets and its dataset's labels: per task the
    dense and k-sparse test accuracy and AUC, and their means over tasks; (figures, texts read)."""
    row, sae = load_sae(store, model_id)
    run = runs.from_record(row)
    backbone = backbones.shared(row["backbone"], settings.cache_dir(store.path))
    tasks = [(name, *read_task(name)) for name in datasets]
    if run.dataset and store.has_dataset(run.dataset):
        tasks += corpus_tasks(store, run.dataset, minimum=max(20, (train + test) // 4))
    results, read = {}, 0
    for number, (name, texts, y) in enumerate(tasks):
        progress(number, len(tasks), f"probing {name}")
        train_rows, test_rows = balanced_split(y, train, test, settings.SEED)
        rows = np.concatenate([train_rows, test_rows])
        dense = backbones.last_token_states(
            backbone, [texts[i] for i in rows], sae.config.layer, sae.config.site, run.prepend_bos
        )
        with torch.no_grad():
            f = sae.encode(torch.from_numpy(dense)).numpy()
        cut = len(train_rows)
        results[name] = probe_task(dense[:cut], dense[cut:], f[:cut], f[cut:], y[train_rows], y[test_rows])
        results[name]["texts"] = [cut, len(rows) - cut]
        read += len(rows)
    progress(len(tasks), len(tasks), "probes fitted")
    means = {
        method: {
            score: float(np.mean([found[method][score] for found in results.values()])) for score in ("accuracy", "auc")
        }
        for method in ("dense", *(f"k={k}" for k in KS))
    }
    return {"tasks": results, "mean": means, "ks": list(KS), "train": train, "test": test}, read


def table(figures: dict) -> pd.DataFrame:
    """One row per task (and the mean): test accuracy of each probe, then the dense AUC."""
    rows = []
    for task, scores in {**figures["tasks"], "mean": figures["mean"]}.items():
        row = {"task": task, **{method: scores[method]["accuracy"] for method in figures["mean"]}}
        rows.append(dict(row, dense_auc=scores["dense"]["auc"]))
    return pd.DataFrame(rows)
