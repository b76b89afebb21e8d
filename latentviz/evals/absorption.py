"""Feature absorption (Chanin et al., 2024; SAEBench's first-letter task): where the LM knows a word's
first letter but the SAE's latents for that letter stay silent, because a latent for the word itself
has absorbed the letter's direction.

1. Words: the backbone's own whole-word tokens (features.word_tokens), each read at its own position
   after a few in-context examples ("pear has the first letter: P"), at the SAE's layer and site.
2. A ground-truth probe per letter (logistic, classes balanced) on the LM's activations; letters it
   cannot find (test F1 below MIN_PROBE_F1) are left out.
3. The letter's main latents: the top-k latents by class-mean difference (positive: latents that
   predict the letter directly), k grown while a k-sparse probe's test F1 rises by F1_JUMP or more.
4. For each test word the probe gets right, with p̂ the unit probe direction and each latent's
   projection fᵢ (Wᵢ·p̂): the absorption fraction (the share of the probe's projection carried by up to
   MAX_ABSORBERS other latents aligned with p̂, cosine ≥ FRACTION_COSINE, where the main latents fall
   short) and full absorption (main latents silent, the top projecting latent aligned with p̂, cosine ≥
   FULL_COSINE, carrying PROJECTION_SHARE of the projection or more), as SAEBench computes them.
5. Per letter, the sum of fractions and the count of full absorptions over the probe's true positives;
   the scores are their means over letters.
SAEBench ranks latents for step 3 by an L1 probe's weights over all latents; here by class-mean
difference (as sparse probing does), which needs no probe over thousands of latents.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from latentviz import backbones, runs, settings
from latentviz.errors import LatentvizError
from latentviz.evals.probing import select_latents
from latentviz.features.bulk import word_tokens
from latentviz.features.reads import load_sae
from latentviz.progress import Progress, quiet
from latentviz.store import Store

LETTERS = "abcdefghijklmnopqrstuvwxyz"
ICL_EXAMPLES = 4  # in-context examples before each word (SAEBench: up to 10, shuffled per word)
MIN_PROBE_F1, MAX_K, F1_JUMP = 0.6, 10, 0.03
FULL_COSINE, FRACTION_COSINE, PROJECTION_SHARE, MAX_ABSORBERS = 0.025, 0.1, 0.4, 3
EPS = 1e-8


def absorption_scores(
    x, f, decoder, direction, main, input_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(absorption fraction, full absorption, the top projecting latent) of each row: activations x
    (n, d) in the LM's units, the SAE's latents f (n, d_sae) and decoder rows (d_sae, d) in its own
    (input_scale · x), the letter's probe direction (d,) and its main latents."""
    x, f, decoder = (np.asarray(a, np.float64) for a in (x, f, decoder))
    unit = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    along = decoder @ unit  # Wᵢ·p̂: what one unit of latent i adds along the probe
    cosine = along / np.maximum(np.linalg.norm(decoder, axis=1), 1e-12)
    projection = f * along  # (n, d_sae)
    total = input_scale * (x @ unit)  # the activation's own projection, in the SAE's units
    main = np.asarray(main, dtype=int)
    is_main = np.zeros(len(decoder), bool)
    is_main[main] = True
    main_part = projection[:, main].sum(1)
    candidates = np.where((~is_main & (cosine >= FRACTION_COSINE))[None] & (projection > 0), projection, 0.0)
    absorbed = -np.sort(-candidates, axis=1)[:, :MAX_ABSORBERS].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = absorbed / total
        unaccounted = np.minimum(absorbed, total - main_part)
        partial = np.clip(unaccounted / (unaccounted + main_part), 0.0, 1.0)
    fraction = np.where(
        (main_part >= total) | ~(share >= PROJECTION_SHARE), 0.0, np.where(main_part <= 0, 1.0, partial)
    )
    top = projection.argmax(1)
    rows = np.arange(len(f))
    with np.errstate(divide="ignore", invalid="ignore"):
        top_share = projection[rows, top] / total
    full = (f[:, main] < EPS).all(1) & (cosine[top] >= FULL_COSINE) & (total >= 0) & (top_share >= PROJECTION_SHARE)
    return fraction, full, top


def main_latents(f_train, y_train, f_test, y_test) -> tuple[list[int], float]:
    """The letter's main latents (grown while a k-sparse probe's F1 jumps) and the last kept F1."""
    from sklearn.metrics import f1_score

    ranking = select_latents(f_train, y_train, MAX_K, positive=True)
    kept, best = [], -np.inf
    for k in range(1, len(ranking) + 1):
        chosen = ranking[:k]
        score = f1_score(y_test, _balanced_probe(f_train[:, chosen], y_train).predict(f_test[:, chosen]))
        if score <= best + F1_JUMP:
            break
        kept, best = chosen.tolist(), score
    return kept, float(best)


def _balanced_probe(x, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(class_weight="balanced", max_iter=1000).fit(x, y)


def prompts(tokenizer, words: list[tuple[int, str]], examples: list[str], prepend_bos) -> list[list[int]]:
    """Token ids of each prompt: the in-context examples, a new line, then the word's own token last."""
    shots = "".join(f"{word} has the first letter: {word[0].upper()}\n" for word in examples)
    (prefix,) = backbones.token_ids(tokenizer, [shots], prepend_bos)
    return [[*prefix, token_id] for token_id, _ in words]


def evaluate(store: Store, model_id: int, words: int, progress: Progress = quiet) -> tuple[dict, int]:
    """The first-letter absorption scores of one SAE on up to `words` of its LM's whole-word tokens
    (a fifth of them held out for testing): (figures, words read)."""
    from sklearn.metrics import f1_score

    row, sae = load_sae(store, model_id)
    run = runs.from_record(row)
    backbone = backbones.shared(row["backbone"], settings.cache_dir(store.path))
    tokenizer = backbone.tokenizer
    vocab = [
        (token_id, tokenizer.decode([token_id]).strip())
        for token_id in np.flatnonzero(word_tokens(tokenizer, len(tokenizer)).numpy()).tolist()
    ]
    vocab = [(token_id, word) for token_id, word in vocab if word[:1].lower() in set(LETTERS) and word.isascii()]
    if len(vocab) < 200:
        raise LatentvizError(f"{row['backbone']}'s tokenizer has {len(vocab)} whole-word tokens; absorption needs 200")
    rng = np.random.default_rng(settings.SEED)
    order = rng.permutation(len(vocab))
    examples = [vocab[i][1] for i in order[:ICL_EXAMPLES]]
    chosen = [vocab[i] for i in order[ICL_EXAMPLES : ICL_EXAMPLES + words]]
    progress(0, 3, f"the LM on {len(chosen):,} words")
    x = backbones.last_token_states_of_ids(
        backbone, prompts(tokenizer, chosen, examples, run.prepend_bos), sae.config.layer, sae.config.site
    )
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(x)).numpy()
    decoder = sae.W_dec.detach().numpy()
    letter = np.array([LETTERS.index(word[0].lower()) for _, word in chosen])
    test = np.zeros(len(chosen), bool)
    test[rng.permutation(len(chosen))[: len(chosen) // 5]] = True
    progress(1, 3, "a probe and the main latents per letter")
    letters, absorbed_words = {}, []
    for index, name in enumerate(LETTERS):
        y = letter == index
        if y[~test].sum() < 10 or y[test].sum() < 3:
            continue
        probe = _balanced_probe(x[~test], y[~test])
        probe_f1 = float(f1_score(y[test], probe.predict(x[test])))
        if probe_f1 < MIN_PROBE_F1:
            continue
        main, main_f1 = main_latents(f[~test], y[~test], f[test], y[test])
        found = test & y & (probe.decision_function(x) > 0)  # the probe's true positives among test words
        fraction, full, top = absorption_scores(
            x[found], f[found], decoder, probe.coef_[0], main, float(sae.input_scale)
        )
        positives = int(found.sum())
        letters[name] = {
            "probe_f1": probe_f1,
            "main_latents": main,
            "main_f1": main_f1,
            "probe_true_positives": positives,
            "absorption_fraction": float(fraction.sum() / positives) if positives else 0.0,
            "full_absorption_rate": float(full.sum() / positives) if positives else 0.0,
        }
        for i in np.flatnonzero(full):
            word = chosen[np.flatnonzero(found)[i]][1]
            absorbed_words.append({"word": word, "letter": name, "absorbing_latent": int(top[i])})
    progress(2, 3, "absorption per word")
    if not letters:
        raise LatentvizError("the LM's activations here do not tell first letters apart: no letter to evaluate")
    fractions = [v["absorption_fraction"] for v in letters.values()]
    rates = [v["full_absorption_rate"] for v in letters.values()]
    figures = {
        "mean_absorption_fraction": float(np.mean(fractions)),
        "mean_full_absorption_rate": float(np.mean(rates)),
        "std_absorption_fraction": float(np.std(fractions, ddof=1)) if len(fractions) > 1 else 0.0,
        "mean_main_latents": float(np.mean([len(v["main_latents"]) for v in letters.values()])),
        "letters": letters,
        "absorbed_words": absorbed_words[:50],
        "words": len(chosen),
        "test_words": int(test.sum()),
    }
    progress(3, 3, "done")
    return figures, len(chosen)
