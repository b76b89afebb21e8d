"""How long a newcomer's first runs take, as the pages promise it: measured by bench/first_hour.py on
a 2-core x86_64 laptop-class VM, CPU only (figures and date in docs/benchmarks.md). Each is written
once here; the pages quote these, and the benchmark compares them with what it measures."""

from __future__ import annotations

FIRST_MAP_S = 120  # ingest BBC News, encode with MiniLM, UMAP
VQ_S = 15  # the Codebook's defaults
SAE_S = 180  # the SAE Train page's quick preset: SmolLM2's first conversion, capture, training, dashboards
VAE_S = 420  # the Text VAE defaults
EXPLAINED_FEATURE_S = 19  # one feature explained and scored by SmolLM2 (41 prompts), on one thread


def about(seconds: float) -> str:
    """A promise for people: "about 40 s", "about 3 min", "about 1.5 h"."""
    if seconds < 90:
        return f"about {round(seconds, -1 if seconds >= 20 else 0):.0f} s"
    if seconds < 5400:
        return f"about {round(seconds / 60):.0f} min"
    return f"about {seconds / 3600:.1f} h"
