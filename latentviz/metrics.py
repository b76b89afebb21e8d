"""Metrics with their reference definitions; each has a known-answer test in tests/test_metrics.py.

Codebook figures (held-out codes, codebook of size K, code counts c_k, p_k = c_k / Σc):
  perplexity   = exp(H(p)), H(p) = -Σ p_k ln p_k   (K when all codes are used equally, 1 when one is)
  utilisation  = #{k : c_k > 0} / K
  dead codes   = #{k : c_k = 0}
  Gini         = 1 - 2·(area under the Lorenz curve of c sorted ascending), trapezoid rule over the K codes
                 (0 when all codes are used equally; 1 - 1/K when one code takes everything)
  purity       = (1/N) Σ_codes max_label |code ∩ label|
  NMI          = I(code; label) / sqrt(H(code) H(label))   (scikit-learn's geometric normalisation)
"""

from __future__ import annotations

import math

import numpy as np


def code_counts(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    codes = np.asarray(codes).reshape(-1)
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes must lie in 0..{codebook_size - 1}")
    return np.bincount(codes, minlength=codebook_size)


def perplexity(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def codebook_usage(codes: np.ndarray, codebook_size: int) -> dict[str, float]:
    """Perplexity, utilisation and dead codes of a set of code ids."""
    counts = code_counts(codes, codebook_size)
    used = int((counts > 0).sum())
    return {
        "perplexity": perplexity(counts),
        "utilisation": used / codebook_size,
        "dead_codes": codebook_size - used,
        "codebook_size": codebook_size,
    }


def lorenz(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative share of codes, cumulative share of uses), codes sorted from least to most used, from (0, 0)."""
    ordered = np.sort(np.asarray(counts, dtype=float))
    codes = np.arange(len(ordered) + 1) / len(ordered)
    uses = np.concatenate([[0.0], np.cumsum(ordered)]) / max(ordered.sum(), 1e-12)
    return codes, uses


def gini(counts: np.ndarray) -> float:
    codes, uses = lorenz(counts)
    area = np.sum((uses[1:] + uses[:-1]) / 2 * np.diff(codes))
    return float(1 - 2 * area)


def purity(codes: np.ndarray, labels: np.ndarray) -> float:
    table = _contingency(codes, labels)
    return float(table.max(axis=1).sum() / table.sum())


def nmi(codes: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels, codes, average_method="geometric"))


def _contingency(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    _, code_ids = np.unique(np.asarray(codes), return_inverse=True)
    _, label_ids = np.unique(np.asarray(labels), return_inverse=True)
    table = np.zeros((code_ids.max() + 1, label_ids.max() + 1), dtype=np.int64)
    np.add.at(table, (code_ids, label_ids), 1)
    return table


# -- Gaussian latents (text VAEs) ------------------------------------------------------------------
#
# For q(z|x) = N(μ, diag σ²) against the prior p(z) = N(0, I), over N texts:
#   KL per dimension   KL_d = mean_x ½ (μ_d² + σ_d² − 1 − ln σ_d²)     (nats; the total KL is Σ_d KL_d)
#   active units       AU = #{d : Var_x(μ_d) > 0.01}   (Burda et al., 2016; sample variance, ddof = 1)
#   mutual information I(x; z) = E_x E_q(z|x)[ln q(z|x)] − E_q(z)[ln q(z)], with the aggregate posterior
#                      q(z) ≈ (1/B) Σ_j q(z|x_j) over a minibatch of B texts and one z ~ q(z|x_i) per text,
#                      averaged over minibatches (Hoffman & Johnson, 2016, as computed by He et al., 2019);
#                      at most ln B
#   IW-NLL             −ln p(x) ≈ −ln (1/K) Σ_k p(x, z_k) / q(z_k|x),  z_k ~ q(z|x)   (Burda et al., 2016)
#   perplexity         exp(Σ NLL / Σ tokens)


def gaussian_kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)


def active_units(mu: np.ndarray, threshold: float = 0.01) -> int:
    return int((np.var(np.asarray(mu, float), axis=0, ddof=1) > threshold).sum())


MI_BATCH = 128  # texts per minibatch of the MI estimate: it cannot exceed ln MI_BATCH


def mutual_information(
    mu: np.ndarray, logvar: np.ndarray, rng: np.random.Generator | None = None, batch_size: int = MI_BATCH
) -> float:
    """I(x; z) as He et al. (2019) compute it: the minibatch estimator on consecutive batches of
    `batch_size` texts, averaged (weighted by batch size). Within a batch of B texts the aggregate
    posterior is that batch's mixture, so each batch's figure is at most ln B; memory is B × B × d."""
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    rng = rng or np.random.default_rng(0)
    total = 0.0
    for start in range(0, len(mu), batch_size):
        m, lv = mu[start : start + batch_size], logvar[start : start + batch_size]
        total += len(m) * _batch_mutual_information(m, lv, rng)
    return float(total / len(mu))


def mutual_information_bound(n: int, batch_size: int = MI_BATCH) -> float:
    """The largest value the minibatch estimator can give on n texts: ln of the batch size."""
    return math.log(min(n, batch_size))


def _batch_mutual_information(mu: np.ndarray, logvar: np.ndarray, rng: np.random.Generator) -> float:
    n, d = mu.shape
    # E_x E_q(z|x) ln q(z|x): the negative entropy of each Gaussian posterior, in closed form.
    neg_entropy = np.mean(-0.5 * d * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(axis=1))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)  # one sample per text
    var = np.exp(logvar)
    # ln q(z_i | x_j) for every pair (i, j) of the batch: (n, n)
    diff = z[:, None, :] - mu[None, :, :]
    log_density = -0.5 * ((diff**2) / var[None] + logvar[None] + math.log(2 * math.pi)).sum(axis=2)
    log_qz = _logsumexp(log_density, axis=1) - math.log(n)
    return float(neg_entropy - log_qz.mean())


def importance_weighted_nll(log_joint: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """−ln p(x) per text from K samples: log_joint[i, k] = ln p(x_i, z_k), log_q[i, k] = ln q(z_k | x_i)."""
    weights = np.asarray(log_joint, float) - np.asarray(log_q, float)
    return -(_logsumexp(weights, axis=1) - math.log(weights.shape[1]))


def perplexity_from_nll(total_nll: float, tokens: int) -> float:
    return float(math.exp(total_nll / tokens))


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


# -- sparse autoencoders (on held-out tokens) ------------------------------------------------------


def l0(f: np.ndarray) -> float:
    """Mean number of active (non-zero) latents per token."""
    return float((np.asarray(f) != 0).sum(1).mean())


def fraction_of_variance_unexplained(x: np.ndarray, x_hat: np.ndarray) -> float:
    """FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖², sums over tokens and dimensions, x̄ the mean token.
    A ratio of sums, computed directly (no E[x²] − E[x]² shortcut, which loses precision)."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    return float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


def explained_variance(x: np.ndarray, x_hat: np.ndarray) -> float:
    return 1.0 - fraction_of_variance_unexplained(x, x_hat)


def mean_cosine(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean over tokens of cos(x, x̂)."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(x_hat, axis=1)
    return float(((x * x_hat).sum(1) / np.maximum(norms, 1e-12)).mean())


def firing_counts(f: np.ndarray) -> np.ndarray:
    """How many tokens each latent fired on."""
    return (np.asarray(f) > 0).sum(0)


def dead_latents(counts: np.ndarray) -> int:
    """Latents that never fired over the window of tokens `counts` was taken on (state its size)."""
    return int((np.asarray(counts) == 0).sum())


def log_density_histogram(counts: np.ndarray, tokens: int, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of log10(firing density) over the latents that fired at all: (counts, bin edges)."""
    density = np.asarray(counts, np.float64) / tokens
    alive = density[density > 0]
    return np.histogram(np.log10(alive), bins=bins, range=(np.log10(1.0 / tokens), 0.0))


def feature_recovery(decoder: np.ndarray, truth: np.ndarray) -> float:
    """MCC, the mean |cosine| of decoder rows and true feature directions paired one to one so that the
    sum of |cosine| is largest (Hungarian matching), over the min(rows) pairs: 1 when every true
    direction is a decoder row (up to sign and order)."""
    similarity = np.abs(cosine_matrix(decoder, truth))
    return float(similarity[matching(similarity)].mean())


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_j) for every row i of a and row j of b (a zero row has cosine 0 with everything)."""

    def unit(rows):
        rows = np.asarray(rows, np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    return unit(a) @ unit(b).T


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of column i of a with column j of b over the same rows (tokens); a constant
    column (a latent that never fired) correlates 0 with everything."""

    def standardised(columns):
        columns = np.asarray(columns, np.float64)
        centred = columns - columns.mean(0)
        return centred / np.maximum(np.linalg.norm(centred, axis=0), 1e-12)

    return standardised(a).T @ standardised(b)


def matching(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns): the one-to-one pairing of rows with columns, min(shape) pairs, whose summed
    similarity is largest (Hungarian matching, scipy's linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(similarity, maximize=True)


def pairwise_mcc(similarity: np.ndarray) -> float:
    """PW-MCC (Song et al., 2025): the mean similarity of the Hungarian-matched pairs of two SAEs'
    features, over min(d_sae) pairs. Similarity is decoder cosine (signed: a latent's activation is never
    negative, so a flipped direction is another feature) or activation correlation over the same tokens."""
    return float(similarity[matching(similarity)].mean())


def kl_divergence(clean_logits, new_logits):
    """KL(P_clean ‖ P_new) = Σ_v p_clean(v) (ln p_clean(v) − ln p_new(v)) per position (nats), from
    next-token logits of shape (..., vocab): how far splicing moved the LM's prediction (SAEBench's core
    `kl_div_with_sae`). A torch function: it runs on the LM's logits where they are."""
    import torch

    clean = torch.log_softmax(clean_logits.float(), dim=-1)
    new = torch.log_softmax(new_logits.float(), dim=-1)
    return (clean.exp() * (clean - new)).sum(-1)


def kl_div_score(kl_sae: float, kl_zero_ablation: float) -> float:
    """(KL_zero_abl − KL_sae) / KL_zero_abl (SAEBench): 1 when splicing in the reconstruction leaves the
    prediction as it was, 0 when it moves it as far as zeroing the activations."""
    return (kl_zero_ablation - kl_sae) / kl_zero_ablation


def relative_reconstruction_bias(x: np.ndarray, x_hat: np.ndarray) -> float:
    """γ = E‖x̂‖² / E[x·x̂], the γ minimising E‖x̂/γ − x‖² (Rajamanoharan et al., 2024, eq. 10; SAEBench's
    `relative_reconstruction_bias`): below 1 an SAE shrinks its reconstructions, 1 without bias."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    return float((x_hat**2).sum(-1).mean() / (x * x_hat).sum(-1).mean())


def bootstrap_interval(
    statistic, units: dict[str, np.ndarray], resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(**units)`, resampling the units (texts) with
    replacement: every array in `units` has one entry per unit and is resampled with the same draw,
    so a ratio of sums stays a ratio of sums over the same texts."""
    sizes = {len(values) for values in units.values()}
    if len(sizes) != 1:
        raise ValueError("every array in units needs one entry per unit")
    n = sizes.pop()
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = np.array([statistic(**{name: np.asarray(v)[draw] for name, v in units.items()}) for draw in draws])
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def ce_loss_recovered(ce_clean: float, ce_sae: float, ce_zero_ablation: float) -> float:
    """(CE_zero_abl − CE_sae) / (CE_zero_abl − CE_clean): 1 when splicing in the reconstruction costs
    nothing, 0 when it is as bad as zeroing the activations."""
    return (ce_zero_ablation - ce_sae) / (ce_zero_ablation - ce_clean)


def delta_lm_loss(ce_clean: float, ce_sae: float) -> float:
    """CE_sae − CE_clean, nats per token."""
    return ce_sae - ce_clean


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting a half: the area under the ROC curve."""
    positive, negative = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((positive > negative).sum() + 0.5 * (positive == negative).sum()) / (positive.size * negative.size))


def balanced_accuracy(probability: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates, predicting 1 at probability ≥ 0.5 (delphi's accuracy)."""
    predicted, truth = np.asarray(probability) >= 0.5, np.asarray(truth, bool)
    return float(((predicted & truth).sum() / truth.sum() + (~predicted & ~truth).sum() / (~truth).sum()) / 2)


def embedding_score(label: np.ndarray, activating: np.ndarray, non_activating: np.ndarray) -> float:
    """delphi's embedding scorer: the AUROC of cos(label, text) for texts a feature fires on against
    texts it does not (vectors as rows)."""
    similarity = cosine_matrix(np.asarray(label)[None, :], np.vstack([activating, non_activating]))[0]
    return auroc(similarity[: len(activating)], similarity[len(activating) :])
