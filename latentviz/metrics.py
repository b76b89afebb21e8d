"""Metrics with their reference definitions; each has a known-answer test in tests/test_metrics.py.

Codebook figures (held-out codes, codebook of size K, code counts c_k, p_k = c_k / Σc):
  perplexity   = exp(H(p)), H(p) = -Σ p_k ln p_k   (K when all codes are used equally, 1 when one is)
  utilisation  = #{k : c_k > 0} / K
  dead codes   = #{k : c_k = 0}
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
