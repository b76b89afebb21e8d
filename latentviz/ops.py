"""Operations in a latent space: interpolation paths, traversals, attribute arithmetic, and the
smoothness of a decoded path. Pure functions on arrays; the models decode the results."""

from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` points on the straight line from a to b, ends included: (steps, D)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * a[None] + t * b[None]


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` points along the great circle from a to b (norms interpolated linearly), ends included.
    Falls back to lerp when a and b point the same way."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    unit_a, unit_b = a / max(norm_a, 1e-12), b / max(norm_b, 1e-12)
    angle = np.arccos(np.clip(unit_a @ unit_b, -1.0, 1.0))
    if angle < 1e-6:
        return lerp(a, b, steps)
    direction = (np.sin((1 - t) * angle) * unit_a[None] + np.sin(t * angle) * unit_b[None]) / np.sin(angle)
    return direction * ((1 - t) * norm_a + t * norm_b)


def traverse(z: np.ndarray, direction: np.ndarray, sigma: float, steps: int, span: float = 3.0) -> np.ndarray:
    """z moved along a unit `direction` from −span·σ to +span·σ in `steps` steps: (steps, D)."""
    unit = direction / max(np.linalg.norm(direction), 1e-12)
    offsets = np.linspace(-span * sigma, span * sigma, steps)[:, None]
    return z[None] + offsets * unit[None]


def attribute_shift(z: np.ndarray, mean_a: np.ndarray, mean_b: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """z + α·(mean z of label A − mean z of label B): 'sport' minus 'business', added to a sentence."""
    return z + alpha * (mean_a - mean_b)


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two word sequences (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, word_a in enumerate(a, start=1):
        current = [i]
        for j, word_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word_a != word_b)))
        previous = current
    return previous[-1]


def smoothness(decodes: list[str]) -> float:
    """Mean word edit distance between consecutive decodes of a path (lower is smoother)."""
    if len(decodes) < 2:
        return 0.0
    return float(np.mean([edit_distance(a.split(), b.split()) for a, b in zip(decodes, decodes[1:], strict=False)]))


def smoothness_reference(texts: list[str], pairs: int = 200, seed: int = 0) -> float:
    """The same figure between random pairs of sentences: what a path that jumps between unrelated
    sentences would score. A smooth path scores far below it."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(texts), size=(2, pairs))
    return float(np.mean([edit_distance(texts[i].split(), texts[j].split()) for i, j in zip(a, b, strict=True)]))
