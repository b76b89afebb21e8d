"""Chart builders: DataFrame in, figure out. Pages only draw what these return.

One module per kind of chart: `maps` (Plotly WebGL maps of texts and of SAE features, the shared
palette and label escaping), `training` (curves, codebook use, VAE and feature histograms) and
`evaluations` (the SAE evaluations). Callers use the names below.
"""

from latentviz.charts.evaluations import (
    absorption_chart,
    frontier_chart,
    label_score_histogram,
    match_chart,
    probing_chart,
    score_intervals,
)
from latentviz.charts.maps import (
    DIMMED,
    HOVER_CHARS,
    NO_LABEL,
    NOISE_COLOUR,
    PALETTE,
    PLOTLY_JS,
    categorical_colours,
    escaped,
    feature_map_figure,
    hover_text,
    map_base,
    map_colouring,
    map_density,
    map_figure,
    map_overlays,
    shortened,
    with_hover,
)
from latentviz.charts.training import (
    activation_histogram,
    codebook_map,
    curves_chart,
    kl_per_dim_chart,
    label_heatmap,
    lorenz_chart,
    usage_chart,
)

__all__ = [
    "DIMMED",
    "HOVER_CHARS",
    "NO_LABEL",
    "NOISE_COLOUR",
    "PALETTE",
    "PLOTLY_JS",
    "absorption_chart",
    "activation_histogram",
    "categorical_colours",
    "codebook_map",
    "curves_chart",
    "escaped",
    "feature_map_figure",
    "frontier_chart",
    "hover_text",
    "shortened",
    "kl_per_dim_chart",
    "label_heatmap",
    "label_score_histogram",
    "lorenz_chart",
    "map_base",
    "map_colouring",
    "map_density",
    "map_figure",
    "map_overlays",
    "match_chart",
    "probing_chart",
    "score_intervals",
    "usage_chart",
    "with_hover",
]
