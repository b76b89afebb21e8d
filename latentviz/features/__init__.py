"""What an SAE's features are: `build` makes every dashboard in bulk and stores it (bulk.py), the
pages and the static site read them (reads.py), and live runs put a new text through the LM and the
SAE (live.py). Opening a feature is a lookup.

Each name below is imported from its module on first use: bulk and live load torch, which a page
that only reads dashboards (and the map's pages) never needs."""

import importlib

_NAMES = {
    "bulk": (
        *("BATCH", "BLOCK", "BUCKETS", "HISTOGRAM_BINS", "LINKS", "PER_BUCKET", "TOP"),
        *("build", "cooccurring_features", "labels", "logit_effects", "nearest_features", "whole_words"),
        "word_tokens",
    ),
    "live": ("FiredOnText", "Steered", "fired_on_text", "steer", "text_activations", "text_record"),
    "reads": (
        *("MAP_PLACEMENTS", "OPENING_DENSITY", "Dashboard", "best_labelled", "dashboard", "feature_map"),
        *("feature_record", "filtered", "histogram", "load_sae", "opening_feature", "statistics"),
    ),
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
