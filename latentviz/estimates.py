"""How long a newcomer's first runs take, as the pages promise it: measured by bench/first_hour.py on
the project's 2-core x86_64 VM, CPU only, idle, 2026-12-03 (bench/results/first_hour.json,
docs/benchmarks.md). Each is written once here; the pages quote these, and the benchmark compares
them with what it measures."""

from __future__ import annotations

FIRST_MAP_S = 60  # ingest BBC News, encode with MiniLM, UMAP: 60.7 s
VQ_S = 30  # the Codebook's defaults: 29.2 s
SAE_S = 340  # the SAE Train page's quick preset: SmolLM2's first conversion, capture, training, dashboards: 340.2 s
VAE_S = 380  # the Text VAE defaults: 378.0 s
EXPLAINED_FEATURE_S = 19  # one feature explained and scored by SmolLM2 (41 prompts), one thread: 383 s for 20


def duration(seconds: float) -> str:
    """A time for people: "40 s", "3 min", "1.5 h" (tens of seconds rounded to ten from 20 s)."""
    if seconds < 90:
        return f"{round(seconds, -1 if seconds >= 20 else 0):.0f} s"
    if seconds < 5400:
        return f"{round(seconds / 60):.0f} min"
    return f"{seconds / 3600:.1f} h"


def about(seconds: float) -> str:
    """A promise: "about 40 s", "about 3 min"."""
    return f"about {duration(seconds)}"
