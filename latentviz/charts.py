"""Chart builders: DataFrame in, figure out. Pages only draw what these return.

The Latent Map is a Plotly `Scattergl` figure: it draws with WebGL, so 50,000 points pan, zoom
and hover smoothly, where Vega-Lite (Altair) renders every mark as SVG/canvas and stalls. Text
shown in hover labels and legends is HTML-escaped first: Plotly renders a subset of HTML there,
and the text may be an untrusted upload.
"""

from __future__ import annotations

import html
import textwrap

import pandas as pd
import plotly.graph_objects as go

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#BAB0AC", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#17BECF"]
NO_LABEL = "(no label)"


def hover_text(text: str, width: int = 70, max_chars: int = 280) -> str:
    """Escaped, wrapped and shortened text for a hover label."""
    short = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(short, width)) or "&nbsp;"


def with_hover(points: pd.DataFrame) -> pd.DataFrame:
    """`points` plus a `hover` column; worth caching: wrapping 50,000 texts takes seconds.
    Big maps get shorter labels, to keep what the browser receives small."""
    max_chars = 280 if len(points) < 20_000 else 160
    return points.assign(hover=[hover_text(t, max_chars=max_chars) for t in points["text"]])


def map_figure(points: pd.DataFrame, color: str | None = None, *, highlight_ids=None, focus_id: int | None = None,
               neighbour_ids=None, placed: pd.DataFrame | None = None, height: int = 640) -> go.Figure:
    """The Latent Map. `points` has id, x, y, text, hover (see `with_hover`) and the `color` column.

    highlight_ids: search matches, drawn on top while the rest fade; focus_id and neighbour_ids:
    a chosen text and its nearest neighbours; placed: new texts (text, x, y) shown as stars."""
    figure = go.Figure()
    dim = highlight_ids is not None
    groups = points.groupby(points[color].fillna(NO_LABEL).astype(str), sort=True) if color else [("texts", points)]
    for index, (name, group) in enumerate(groups):
        figure.add_trace(go.Scattergl(
            x=group["x"], y=group["y"], mode="markers", name=html.escape(str(name)),
            customdata=group["id"], hovertext=group["hover"],
            hovertemplate="%{hovertext}<extra>%{fullData.name}</extra>",
            marker={"size": 5 if len(points) < 20_000 else 3, "color": PALETTE[index % len(PALETTE)],
                    "opacity": 0.15 if dim else 0.75},
        ))
    if dim:
        matches = points[points["id"].isin(list(highlight_ids))]
        figure.add_trace(_overlay(matches, "search matches", "circle", "#111111", 8))
    if neighbour_ids is not None:
        figure.add_trace(_overlay(points[points["id"].isin(list(neighbour_ids))], "neighbours", "diamond", "#FFB000", 10))
    if focus_id is not None:
        figure.add_trace(_overlay(points[points["id"] == focus_id], "chosen text", "star", "#D81B60", 16))
    if placed is not None and not placed.empty:
        figure.add_trace(go.Scattergl(
            x=placed["x"], y=placed["y"], mode="markers", name="your text",
            hovertext=[hover_text(t) for t in placed["text"]], hovertemplate="%{hovertext}<extra>your text</extra>",
            marker={"symbol": "star", "size": 18, "color": "#000000", "line": {"width": 1.5, "color": "#FFFFFF"}},
        ))
    figure.update_layout(
        height=height, margin={"l": 0, "r": 0, "t": 30, "b": 40}, dragmode="pan", hovermode="closest",
        legend={"itemsizing": "constant", "orientation": "h", "yanchor": "top", "y": 0, "x": 0},
        xaxis={"visible": False}, yaxis={"visible": False},
    )
    return figure


def _overlay(rows: pd.DataFrame, name: str, symbol: str, color: str, size: int) -> go.Scattergl:
    return go.Scattergl(
        x=rows["x"], y=rows["y"], mode="markers", name=name, customdata=rows["id"],
        hovertext=rows["hover"], hovertemplate="%{hovertext}<extra>" + name + "</extra>",
        marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 1, "color": "#FFFFFF"}},
    )
