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
    return {"perplexity": perplexity(counts), "utilisation": used / codebook_size, "dead_codes": codebook_size - used,
            "codebook_size": codebook_size}


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
