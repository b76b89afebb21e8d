"""The maps: the Latent Map's colours and traces (`map_colouring`, drawn by point_map.js through
map_widget, and by the static site), its overlays and density layer; Plotly `Scattergl` figures for
the small maps drawn by `st.plotly_chart` (the VAE path, the SAE feature map); and the palette and
label escaping every chart shares.

Text shown in Plotly's hover labels and legends is HTML-escaped first: Plotly renders a subset of
HTML there, and the text may be an untrusted upload. point_map.js shows text as text.
"""

from __future__ import annotations

import html
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go

from latentviz import numbers
from latentviz.projection import NOISE

PALETTE = [
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#EECA3B",
    "#9D755D",
    "#FF9DA6",
    "#BAB0AC",
    "#1F77B4",
    "#2CA02C",
    "#D62728",
    "#9467BD",
    "#8C564B",
    "#17BECF",
]
# plotly.js as plotly's Python package ships it: the static site serves this copy (its small charts)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
NO_LABEL = "(no label)"
NOISE_COLOUR = "#C9C9C9"


def categorical_colours(n: int) -> list[str]:
    """n distinct colours: the palette, then hues spaced by the golden angle (never a repeat)."""
    import colorsys

    extra = [colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.5, 0.65) for i in range(max(0, n - len(PALETTE)))]
    return (PALETTE + ["#" + "".join(f"{round(255 * c):02X}" for c in rgb) for rgb in extra])[:n]


def _natural(name: str) -> tuple:
    """Sort key: "cluster 2" before "cluster 10", numbers as numbers."""
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name)))


def escaped(value) -> str:
    """Text made safe for Plotly's labels: <, > and & escaped. Quotes are left as they are: Plotly
    decodes only &amp;, &lt;, &gt; and numeric entities there, so &quot; would show as typed."""
    return html.escape(str(value), quote=False)


HOVER_CHARS = 280  # a hover label's text is cut here


def shortened(text: str, max_chars: int = HOVER_CHARS) -> str:
    """`text`, cut to `max_chars` with an ellipsis."""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def hover_text(text: str, width: int = 70, max_chars: int = HOVER_CHARS) -> str:
    """Escaped, wrapped and shortened text for a hover label."""
    return "<br>".join(escaped(line) for line in textwrap.wrap(shortened(text, max_chars), width)) or "&nbsp;"


def with_hover(points: pd.DataFrame) -> pd.DataFrame:
    """`points` plus a `hover` column; worth caching: wrapping 50,000 texts takes seconds.
    Big maps get shorter labels, to keep what the browser receives small."""
    max_chars = 280 if len(points) < 20_000 else 160
    return points.assign(hover=[hover_text(t, max_chars=max_chars) for t in points["text"]])


DIMMED = 0.2  # the base points' opacity factor while search matches are drawn on top


def map_figure(
    points: pd.DataFrame,
    color: str | None = None,
    *,
    highlight_ids=None,
    focus_id: int | None = None,
    neighbour_ids=None,
    placed: pd.DataFrame | None = None,
    path: pd.DataFrame | None = None,
    height: int = 640,
) -> go.Figure:
    """The Latent Map: `map_base` with `map_overlays` on top, in one figure."""
    figure = map_base(points, color, height=height)
    if highlight_ids is not None:
        for trace in figure.data:
            trace.marker.opacity *= DIMMED
    figure.add_traces(
        map_overlays(
            points,
            highlight_ids=highlight_ids,
            focus_id=focus_id,
            neighbour_ids=neighbour_ids,
            placed=placed,
            path=path,
        )
    )
    return figure


def map_groups(points: pd.DataFrame, color: str | None = None) -> list[tuple[str, pd.DataFrame, dict]]:
    """The map's points by colour, as drawn: (name, rows, marker), noise first, then the names in
    natural order, each a colour of its own; `points` has id, x, y and the `color` column."""
    groups = list(points.groupby(points[color].fillna(NO_LABEL).astype(str))) if color else [("texts", points)]
    groups.sort(key=lambda item: (item[0] != NOISE, _natural(item[0])))
    colours = iter(categorical_colours(sum(name != NOISE for name, _ in groups)))
    size = 5 if len(points) < 20_000 else 3
    return [
        (
            name,
            group,
            {
                "size": size,
                "color": NOISE_COLOUR if name == NOISE else next(colours),
                "opacity": 0.75 * (0.6 if name == NOISE else 1),
            },
        )
        for name, group in groups
    ]


def map_colouring(points: pd.DataFrame, color: str | None = None) -> tuple[list[dict], np.ndarray]:
    """The map's colours as point_map.js draws them: a trace per colour ({name, count, size, color,
    opacity}, `map_groups`) and the points' positions in `points`, trace by trace."""
    groups = map_groups(points[[color] if color else []].reset_index(drop=True), color)  # the colours alone
    traces = [{"name": name, "count": len(rows), **marker} for name, rows, marker in groups]
    order = np.concatenate([rows.index.to_numpy() for _, rows, _ in groups]) if groups else np.arange(len(points))
    return traces, order


def map_base(points: pd.DataFrame, color: str | None = None, *, height: int = 640) -> go.Figure:
    """Every point of the map, one WebGL trace per colour (`map_groups`). `points` has id, x, y,
    hover (see `with_hover`) and the `color` column."""
    figure = go.Figure()
    for name, group, marker in map_groups(points, color):
        figure.add_trace(
            go.Scattergl(
                x=group["x"],
                y=group["y"],
                mode="markers",
                name=escaped(name),
                customdata=group["id"],
                hovertext=group["hover"],
                hovertemplate="%{hovertext}<extra>%{fullData.name}</extra>",
                marker=marker,
            )
        )
    figure.update_layout(
        height=height,
        margin={"l": 0, "r": 0, "t": 30, "b": 40},
        dragmode="pan",
        hovermode="closest",
        legend={"itemsizing": "constant", "orientation": "h", "yanchor": "top", "y": 0, "x": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return figure


DENSITY_BINS = 96  # the density layer's grid, a side: fine enough for islands, a few KB to send


def gaussian_blur(n: int, sigma: float) -> np.ndarray:
    """An n × n matrix that blurs a grid's axis of n cells with a Gaussian of `sigma` cells, as
    scipy.ndimage.gaussian_filter1d does (weights to 4 sigma, the edges reflected: d c b a | a b c d):
    12 lines here where importing scipy.ndimage took 0.4 s of the map's first view."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    source = np.mod(np.arange(n)[:, None] + offsets, 2 * n)  # the cell each weight reads, reflected
    source = np.where(source >= n, 2 * n - 1 - source, source)
    blur = np.zeros((n, n))
    np.add.at(blur, (np.repeat(np.arange(n), len(offsets)), source.ravel()), np.tile(weights / weights.sum(), n))
    return blur


def map_density(points: pd.DataFrame) -> go.Contour:
    """Where the map's texts lie thickest, as contour lines (Embedding Atlas's density layer): counts
    on a DENSITY_BINS-square grid, smoothed by a Gaussian of Scott's bandwidth (n^(-1/6) standard
    deviations an axis: wide for a few thousand points, fine for a million), on a log scale so sparse
    islands show beside dense cores. Lines, not a filled heatmap: drawn over the points (under them a
    WebGL scatter hides it), they leave the points readable."""
    counts, x_edges, y_edges = np.histogram2d(points["x"], points["y"], bins=DENSITY_BINS)
    cells = [np.std(points[axis]) / (edges[1] - edges[0]) for axis, edges in (("x", x_edges), ("y", y_edges))]
    x_blur, y_blur = (gaussian_blur(DENSITY_BINS, max(cell * len(points) ** (-1 / 6), 0.5)) for cell in cells)
    density = np.log1p(x_blur @ counts @ y_blur.T)  # bandwidth in cells, per axis
    top = float(density.max()) or 1.0
    return go.Contour(
        z=density.T.astype(np.float32),  # rows are y
        x=((x_edges[:-1] + x_edges[1:]) / 2).astype(np.float32),
        y=((y_edges[:-1] + y_edges[1:]) / 2).astype(np.float32),
        name="density",
        contours={"coloring": "lines", "start": top * 0.15, "end": top, "size": top * 0.15},
        colorscale=[[0, "#9E9E9E"], [1, "#212121"]],
        line={"width": 1},
        showscale=False,
        showlegend=False,
        hoverinfo="skip",
    )


def map_overlays(
    points: pd.DataFrame,
    *,
    highlight_ids=None,
    focus_id: int | None = None,
    neighbour_ids=None,
    placed: pd.DataFrame | None = None,
    path: pd.DataFrame | None = None,
) -> list:
    """What is drawn over the map's points: search matches (highlight_ids), a chosen text and its
    nearest neighbours, placed texts (text, x, y) as numbered stars, an interpolation path."""
    traces = []
    if highlight_ids is not None:
        traces.append(
            _overlay(
                points[points["id"].isin(list(highlight_ids))], "search matches", "circle", "#111111", 8, hover=False
            )
        )
    if neighbour_ids is not None:
        traces.append(_overlay(points[points["id"].isin(list(neighbour_ids))], "neighbours", "diamond", "#FFB000", 10))
    if focus_id is not None:
        traces.append(_overlay(points[points["id"] == focus_id], "chosen text", "star", "#D81B60", 16))
    if placed is not None and not placed.empty:  # numbered as in the page's list of them
        numbers = [str(i) for i in range(1, len(placed) + 1)]
        traces.append(
            go.Scatter(  # SVG: a few points, and Scattergl draws no text labels
                x=placed["x"],
                y=placed["y"],
                mode="markers+text",
                name="your text",
                text=numbers,
                textposition="top center",
                # bold with a halo in the background's colour: legible over dense points
                textfont={"size": 14, "color": "#6A1B9A", "weight": "bold", "shadow": "auto"},
                hovertext=[f"{n}. {hover_text(t)}" for n, t in zip(numbers, placed["text"], strict=True)],
                hovertemplate="%{hovertext}<extra>your text</extra>",
                marker={"symbol": "star", "size": 18, "color": "#8E24AA", "line": {"width": 1.5, "color": "#FFFFFF"}},
            )
        )
    if path is not None and not path.empty:
        traces.append(
            go.Scattergl(
                x=path["x"],
                y=path["y"],
                mode="lines+markers",
                name="path",
                hovertext=[hover_text(t) for t in path["text"]],
                hovertemplate="%{hovertext}<extra>path</extra>",
                line={"color": "#000000", "width": 2},
                marker={"size": 9, "color": "#D81B60", "line": {"width": 1, "color": "#FFFFFF"}},
            )
        )
    return traces


def _overlay(rows: pd.DataFrame, name: str, symbol: str, color: str, size: int, *, hover: bool = True) -> go.Scattergl:
    """A few marked points over the map, hover labels and all; without `hover` (search matches, which
    can be most of a large map) the hover goes to the map's own point under each."""
    text = (
        {"hovertext": [hover_text(t) for t in rows["text"]], "hovertemplate": "%{hovertext}<extra>" + name + "</extra>"}
        if hover
        else {"hoverinfo": "skip"}
    )
    return go.Scattergl(
        x=rows["x"],
        y=rows["y"],
        mode="markers",
        name=name,
        customdata=rows["id"],
        **text,
        marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 1, "color": "#FFFFFF"}},
    )


UNSORTED_TOPICS = ("mixed", "never fired")  # drawn grey, under the topics


def feature_map_figure(
    points: pd.DataFrame, chosen: int | None = None, shown: set[int] | None = None, colour: str = "density"
) -> go.Figure:
    """SAE features on their map (features.feature_map), coloured by log10 firing density or by topic
    (a colour per label, a legend to click; "mixed" grey beneath); click to open one. With `shown`
    (the list's filter), the other features are drawn small and grey beneath."""
    figure = go.Figure()
    inside = points
    if shown is not None:
        keep = points["feature"].isin(shown)
        inside, rest = points[keep], points[~keep]
        if len(rest):
            figure.add_trace(
                go.Scattergl(
                    x=rest["x"],
                    y=rest["y"],
                    mode="markers",
                    name="filtered out",
                    customdata=rest["feature"],
                    hoverinfo="skip",
                    showlegend=False,
                    marker={"size": 3, "color": "#D0D0D0", "opacity": 0.5},
                )
            )
    size = 4 if shown is None else 8  # the filter's features stand out from the grey
    hover = [
        f"feature {f}<br>{escaped(label)}<br>topic {escaped(topic)} · log10 density {numbers.figure(d)}"
        for f, label, topic, d in zip(
            inside["feature"], inside["label"], inside["topic"], inside["log10_density"], strict=True
        )
    ]
    inside = inside.assign(hover=hover)

    def features(rows: pd.DataFrame, name: str, marker: dict) -> go.Scattergl:
        return go.Scattergl(
            x=rows["x"],
            y=rows["y"],
            mode="markers",
            customdata=rows["feature"],
            hovertext=rows["hover"],
            hovertemplate="%{hovertext}<extra></extra>",
            name=name,
            marker={"size": size, "opacity": 0.8, **marker},
        )

    if colour == "topic":
        topics = sorted(set(inside["topic"]) - set(UNSORTED_TOPICS), key=_natural)
        colours = dict(zip(topics, categorical_colours(len(topics)), strict=True))
        for topic in [t for t in UNSORTED_TOPICS if t in set(inside["topic"])] + topics:
            rows = inside[inside["topic"] == topic]
            figure.add_trace(features(rows, topic, {"color": colours.get(topic, NOISE_COLOUR)}))
    else:
        # the colour bar's title along it, the bar kept below the mode bar (top right), which covered it
        bar = {"title": {"text": "log10 density", "side": "right"}, "thickness": 12, "len": 0.8, "y": 0.4}
        density = {"color": inside["log10_density"], "colorscale": "Viridis", "colorbar": bar}
        figure.add_trace(features(inside, "features", density).update(showlegend=False))
    if chosen is not None:
        row = points[points["feature"] == chosen]
        figure.add_trace(
            go.Scattergl(
                x=row["x"],
                y=row["y"],
                mode="markers",
                name=f"feature {chosen}",
                hoverinfo="skip",
                showlegend=False,
                marker={"symbol": "star", "size": 16, "color": "#D81B60", "line": {"width": 1, "color": "#FFFFFF"}},
            )
        )
    figure.update_layout(
        height=420,
        margin={"l": 0, "r": 0, "t": 10, "b": 10},
        # Pan, not box select: Streamlit turns click-to-pick off while the drag selects (clickmode
        # "event"), and a click is how one asks for a text's neighbours. Box and lasso are in the mode bar.
        dragmode="pan",
        showlegend=colour == "topic",
        legend={"itemsizing": "constant", "title": {"text": "topic"}},
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return figure
