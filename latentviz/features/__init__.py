"""What an SAE's features are: `build` makes every dashboard in bulk and stores it (build.py), the
pages and the static site read them (reads.py), and live runs put a new text through the LM and the
SAE (live.py). Opening a feature is a lookup."""

from latentviz.features.build import (
    BATCH,
    BLOCK,
    BUCKETS,
    HISTOGRAM_BINS,
    LINKS,
    PER_BUCKET,
    TOP,
    build,
    cooccurring_features,
    labels,
    logit_effects,
    nearest_features,
    whole_words,
)
from latentviz.features.live import FiredOnText, fired_on_text, steer, text_activations
from latentviz.features.reads import (
    OPENING_DENSITY,
    Dashboard,
    best_labelled,
    dashboard,
    feature_map,
    filtered,
    histogram,
    load_sae,
    opening_feature,
    statistics,
)

__all__ = [
    "BATCH",
    "BLOCK",
    "BUCKETS",
    "Dashboard",
    "FiredOnText",
    "HISTOGRAM_BINS",
    "LINKS",
    "OPENING_DENSITY",
    "PER_BUCKET",
    "TOP",
    "best_labelled",
    "build",
    "cooccurring_features",
    "dashboard",
    "feature_map",
    "filtered",
    "fired_on_text",
    "histogram",
    "labels",
    "load_sae",
    "logit_effects",
    "nearest_features",
    "opening_feature",
    "statistics",
    "steer",
    "text_activations",
    "whole_words",
]
