"""Chart builders: DataFrame in, figure out. Pages only draw what these return.

The Latent Map is a Plotly `Scattergl` figure: it draws with WebGL, so 50,000 points pan, zoom
and hover smoothly, where Vega-Lite (Altair) renders every mark as SVG/canvas and stalls. Text
shown in hover labels and legends is HTML-escaped first: Plotly renders a subset of HTML there,
and the text may be an untrusted upload.
"""

from __future__ import annotations

import html
import textwrap
from pathlib import Path

import pandas as pd
import plotly
import plotly.graph_objects as go

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
# plotly.js as plotly's Python package ships it: the map component and the static site serve this copy
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


def hover_text(text: str, width: int = 70, max_chars: int = 280) -> str:
    """Escaped, wrapped and shortened text for a hover label."""
    short = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
    return "<br>".join(escaped(line) for line in textwrap.wrap(short, width)) or "&nbsp;"


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


def map_base(points: pd.DataFrame, color: str | None = None, *, height: int = 640) -> go.Figure:
    """Every point of the map, one WebGL trace per colour. `points` has id, x, y, text, hover (see
    `with_hover`) and the `color` column."""
    figure = go.Figure()
    groups = list(points.groupby(points[color].fillna(NO_LABEL).astype(str))) if color else [("texts", points)]
    groups.sort(key=lambda item: (item[0] != NOISE, _natural(item[0])))
    colours = iter(categorical_colours(sum(name != NOISE for name, _ in groups)))
    for name, group in groups:
        figure.add_trace(
            go.Scattergl(
                x=group["x"],
                y=group["y"],
                mode="markers",
                name=escaped(name),
                customdata=group["id"],
                hovertext=group["hover"],
                hovertemplate="%{hovertext}<extra>%{fullData.name}</extra>",
                marker={
                    "size": 5 if len(points) < 20_000 else 3,
                    "color": NOISE_COLOUR if name == NOISE else next(colours),
                    "opacity": 0.75 * (0.6 if name == NOISE else 1),
                },
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
            _overlay(points[points["id"].isin(list(highlight_ids))], "search matches", "circle", "#111111", 8)
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
                textfont={"size": 13, "color": "#6A1B9A"},
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


def _overlay(rows: pd.DataFrame, name: str, symbol: str, color: str, size: int) -> go.Scattergl:
    return go.Scattergl(
        x=rows["x"],
        y=rows["y"],
        mode="markers",
        name=name,
        customdata=rows["id"],
        hovertext=rows["hover"],
        hovertemplate="%{hovertext}<extra>" + name + "</extra>",
        marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 1, "color": "#FFFFFF"}},
    )


# -- codebook charts (Altair: at most a few thousand marks) --------------------------------------


def usage_chart(usage: pd.DataFrame, log: bool = False):
    """Codes sorted by how often they are used; dead codes (never used) in red at the baseline."""
    import altair as alt

    x = alt.X(
        "rank:Q",
        title="codes, most used first (dead codes red)",
        scale=alt.Scale(domain=[0, len(usage)], nice=False),
        axis=alt.Axis(format=",d", tickMinStep=1),  # whole codes, even for a small codebook
    )
    bars = (
        alt.Chart(usage)
        .mark_bar(color="#4C78A8")
        .encode(
            x=x,
            y=alt.Y(
                "count:Q",
                title="texts" + (" (log)" if log else ""),
                scale=alt.Scale(type="symlog") if log else alt.Scale(),
                axis=alt.Axis(format=",d"),
            ),
            tooltip=["code", "count", "rank"],
        )
    )
    dead = (
        alt.Chart(usage[usage["dead"]])
        .mark_tick(color="#E45756", thickness=2, size=10)
        .encode(x=x, y=alt.datum(0), tooltip=["code"])
    )
    return (bars + dead).properties(height=220)


def lorenz_chart(curves: dict[str, pd.DataFrame]):
    """Lorenz curves of code use, one per model, against the diagonal of perfectly even use."""
    import altair as alt

    frame = pd.concat([c.assign(model=name) for name, c in curves.items()])
    even = (
        alt.Chart(pd.DataFrame({"codes": [0, 1], "uses": [0, 1]}))
        .mark_line(strokeDash=[4, 4], color="#999")
        .encode(x="codes:Q", y="uses:Q")
    )
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("codes:Q", title="share of codes (least used first)", axis=alt.Axis(format="%")),
            y=alt.Y("uses:Q", title="share of uses", axis=alt.Axis(format="%")),
            # inside, top left, where the curves never go: a legend below would take the plot's height
            color=alt.Color(
                "model:N",
                scale=alt.Scale(scheme="tableau10"),  # models apart at a glance (the theme's blues are alike)
                legend=alt.Legend(orient="top-left", title=None, labelLimit=0),
            ),
        )
    )
    return (even + lines).properties(height=340)


def curves_chart(curves: pd.DataFrame, columns: int = 4):
    """Held-out figures over training: one small panel per metric, one line per model."""
    import altair as alt

    return (
        alt.Chart(curves)
        .mark_line(point=True)
        .encode(
            # ",d" / ",~r": steps as 1,500 and figures as 250 or 0.0021 (not "1.5k", "2.5e+2")
            x=alt.X("step:Q", axis=alt.Axis(format=",d")),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=",~r")),
            color=alt.Color(
                "model:N", scale=alt.Scale(scheme="tableau10"), legend=alt.Legend(orient="bottom", labelLimit=0)
            ),
            tooltip=["model", "metric", "step", "value"],
        )
        .properties(width=170, height=150)
        .facet(facet=alt.Facet("metric:N", title=None), columns=columns)
        .resolve_scale(y="independent")
        # each panel its own step axis: a shared one is drawn under every column, under an empty
        # last cell too (7 metrics in 4 columns), where it looked like an eighth, empty panel
        .resolve_axis(x="independent")
    )


def label_heatmap(by_label: pd.DataFrame, top: int = 30):
    """Texts per (code, label) for the most used codes."""
    import altair as alt

    totals = by_label.groupby("code")["count"].sum().nlargest(top)
    frame = by_label[by_label["code"].isin(totals.index)].assign(code=lambda f: f["code"].astype(str))
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("label:N", title=None, axis=alt.Axis(labelAngle=-30, labelLimit=0)),
            y=alt.Y(
                "code:N",
                sort=[str(c) for c in totals.index],
                title=f"code (top {len(totals)})",
                axis=alt.Axis(labelOverlap=False),  # every row named, not every other one
            ),
            color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
            tooltip=["code", "label", "count"],
        )
        .properties(height=max(200, 18 * len(totals)))
    )


def codebook_map(vectors: pd.DataFrame):
    """Codebook vectors in 2-D (PCA), sized by use; dead codes as red crosses."""
    import altair as alt

    frame = vectors.assign(dead=vectors["count"] == 0)
    return (
        alt.Chart(frame)
        .mark_point(filled=True, opacity=0.7)
        .encode(
            x=alt.X("x:Q", title=None, axis=None),
            y=alt.Y("y:Q", title=None, axis=None),
            size=alt.Size("count:Q", scale=alt.Scale(range=[10, 400]), legend=None),
            color=alt.Color("dead:N", scale=alt.Scale(domain=[False, True], range=["#4C78A8", "#E45756"]), legend=None),
            shape=alt.Shape("dead:N", scale=alt.Scale(domain=[False, True], range=["circle", "cross"]), legend=None),
            tooltip=["code", "count"],
        )
        .properties(height=300)
    )


# -- text VAE charts -----------------------------------------------------------------------------


def kl_per_dim_chart(kl_per_dim: list[float], threshold: float = 0.01):
    """KL(q(z_d|x) ‖ p(z_d)) per latent dimension, largest first; dimensions carrying almost nothing in grey."""
    import altair as alt

    frame = pd.DataFrame({"dimension": range(len(kl_per_dim)), "KL": kl_per_dim})
    frame["carries information"] = frame["KL"] > threshold
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("dimension:O", sort="-y", title="latent dimension (sorted by KL)"),
            y=alt.Y("KL:Q", title="KL (nats)"),
            color=alt.Color(
                "carries information:N",
                scale=alt.Scale(domain=[True, False], range=["#4C78A8", "#BAB0AC"]),
                legend=None,
            ),
            tooltip=["dimension", alt.Tooltip("KL:Q", format=".3f")],
        )
        .properties(height=220)
    )


def activation_histogram(bins: pd.DataFrame):
    """How strongly a feature fires when it fires: its stored counts (start, end, count) of non-zero
    activations in equal bins from 0 to its max."""
    import altair as alt

    return (
        alt.Chart(bins.rename(columns={"count": "tokens"}))
        .mark_bar(color="#F58518")
        .encode(
            x=alt.X("start:Q", title="activation", bin="binned", axis=alt.Axis(format=",.2~f")),
            x2="end:Q",
            y=alt.Y("tokens:Q", title="tokens", axis=alt.Axis(format=",d")),
            tooltip=[
                alt.Tooltip("start:Q", title="from", format=".3f"),
                alt.Tooltip("end:Q", title="to", format=".3f"),
                alt.Tooltip("tokens:Q", format=","),
            ],
        )
        .properties(height=180)
    )


def feature_map_figure(points: pd.DataFrame, chosen: int | None = None, shown: set[int] | None = None) -> go.Figure:
    """All SAE features by decoder direction (UMAP), coloured by log10 firing density; click to open
    one. With `shown` (the list's filter), the other features are drawn small and grey beneath."""
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
                    marker={"size": 3, "color": "#D0D0D0", "opacity": 0.5},
                )
            )
    hover = [
        f"feature {f}<br>{escaped(label)}<br>log10 density {d:.2f}"
        for f, label, d in zip(inside["feature"], inside["label"], inside["log10_density"], strict=True)
    ]
    figure.add_trace(
        go.Scattergl(
            x=inside["x"],
            y=inside["y"],
            mode="markers",
            customdata=inside["feature"],
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            name="features",
            marker={
                "size": 4 if shown is None else 8,  # the filter's features stand out from the grey
                "color": inside["log10_density"],
                "colorscale": "Viridis",
                "opacity": 0.8,
                # title along the bar, the bar kept below the mode bar (top right), which covered it
                "colorbar": {
                    "title": {"text": "log10 density", "side": "right"},
                    "thickness": 12,
                    "len": 0.8,
                    "y": 0.4,
                },
            },
        )
    )
    if chosen is not None:
        row = points[points["feature"] == chosen]
        figure.add_trace(
            go.Scattergl(
                x=row["x"],
                y=row["y"],
                mode="markers",
                name=f"feature {chosen}",
                hoverinfo="skip",
                marker={"symbol": "star", "size": 16, "color": "#D81B60", "line": {"width": 1, "color": "#FFFFFF"}},
            )
        )
    figure.update_layout(
        height=420,
        margin={"l": 0, "r": 0, "t": 10, "b": 10},
        # Pan, not box select: Streamlit turns click-to-pick off while the drag selects (clickmode
        # "event"), and a click is how one asks for a text's neighbours. Box and lasso are in the mode bar.
        dragmode="pan",
        showlegend=False,
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return figure


# -- SAE evaluations ---------------------------------------------------------------------------------------

SCORE_NAMES = {
    "ce_loss_score": "CE loss recovered",
    "kl_div_score": "KL score",
    "relative_reconstruction_bias": "shrinkage γ",
}


def score_intervals(figures: dict):
    """The core evaluation's scores as points with their 95% bootstrap intervals, on one 0–1+ axis
    (1 is the ideal for all three)."""
    import altair as alt

    rows = pd.DataFrame(
        [
            {
                "score": label,
                "value": figures[name],
                "low": figures[f"{name}_interval"][0],
                "high": figures[f"{name}_interval"][1],
            }
            for name, label in SCORE_NAMES.items()
        ]
    )
    y = alt.Y("score:N", title=None, sort=list(SCORE_NAMES.values()))
    tooltip = [
        alt.Tooltip("score:N"),
        alt.Tooltip("value:Q", format=".4f"),
        alt.Tooltip("low:Q", format=".4f"),
        alt.Tooltip("high:Q", format=".4f"),
    ]
    bars = (
        alt.Chart(rows).mark_rule(strokeWidth=3, color="#4C78A8").encode(x="low:Q", x2="high:Q", y=y, tooltip=tooltip)
    )
    points = (
        alt.Chart(rows)
        .mark_point(filled=True, size=90, color="#4C78A8")
        .encode(
            x=alt.X(
                "value:Q",
                title="value (1 = as if nothing were spliced in; γ < 1: shrinks)",
                scale=alt.Scale(zero=False),
            ),
            y=y,
            tooltip=tooltip,
        )
    )
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 4], color="#999").encode(x="x:Q")
    return (bars + points + one).properties(height=150)


def frontier_chart(frontier: pd.DataFrame, current: int):
    """L0 against FVU for every SAE reading the same activations, by architecture; the open one ringed.
    Lower left is better: fewer active latents and less variance left unexplained."""
    import altair as alt

    rows = frontier.assign(
        open=frontier["id"] == current, label="#" + frontier["id"].astype(str) + " " + frontier["name"]
    )
    tooltip = [
        alt.Tooltip("label:N", title="SAE"),
        alt.Tooltip("architecture:N"),
        alt.Tooltip("d_sae:Q", format=","),
        alt.Tooltip("l0:Q", title="L0", format=".1f"),
        alt.Tooltip("fvu:Q", title="FVU", format=".4f"),
        alt.Tooltip("measured:N", title="figures from"),
    ]
    base = alt.Chart(rows).encode(
        x=alt.X("l0:Q", title="L0 (active latents per token)", scale=alt.Scale(type="log")),
        y=alt.Y(
            "fvu:Q",
            title="FVU (share of variance unexplained)",
            scale=alt.Scale(zero=False),
            axis=alt.Axis(format=".3f"),
        ),
        tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=110).encode(
        color=alt.Color("architecture:N", scale=alt.Scale(range=PALETTE)),
        shape=alt.Shape("measured:N", title="figures from"),
    )
    ring = base.transform_filter("datum.open").mark_point(size=400, color="black", strokeWidth=2)
    return (points + ring).properties(height=320)


MATCH_COLOURS = {"matched": "#54A24B", "split": "#F58518", "absorbed": "#B279A2", "unmatched": "#BAB0AC"}


def match_chart(matches: pd.DataFrame):
    """Each feature of the first SAE: its firing density against the decoder cosine of its partner in the
    second, coloured by how it matched; click one to open the pair."""
    import altair as alt

    rows = matches[matches["density"].fillna(0) > 0] if matches["density"].notna().any() else matches
    pick = alt.selection_point(fields=["feature"], name="pair", on="click")
    x = (
        alt.X("density:Q", title="firing density (first SAE)", scale=alt.Scale(type="log"))
        if rows["density"].notna().any()
        else alt.X("feature:Q")
    )
    return (
        alt.Chart(rows)
        .mark_circle(size=28, opacity=0.7)
        .encode(
            x=x,
            y=alt.Y("cosine:Q", title="decoder cosine with its partner", scale=alt.Scale(domain=[-0.2, 1])),
            color=alt.Color(
                "kind:N",
                title="match",
                scale=alt.Scale(domain=list(MATCH_COLOURS), range=list(MATCH_COLOURS.values())),
            ),
            tooltip=[
                alt.Tooltip("feature:Q"),
                alt.Tooltip("partner:Q"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("cosine:Q", format=".3f"),
                alt.Tooltip("correlation:Q", format=".3f"),
                alt.Tooltip("density:Q", format=".2e"),
            ],
        )
        .add_params(pick)
        .properties(height=320)
    )


def probing_chart(figures: dict, score: str = "accuracy"):
    """Sparse probing: each task's test score with the top 1, 2, 5, 20 latents and with the dense
    activations (thin lines), and their mean (thick): how close a few latents come to the whole layer."""
    import altair as alt

    methods = [f"k={k}" for k in figures["ks"]] + ["dense"]
    rows = pd.DataFrame(
        [
            {"task": task, "probe": method, score: scores[method][score]}
            for task, scores in {**figures["tasks"], "mean over tasks": figures["mean"]}.items()
            for method in methods
        ]
    )
    x = alt.X("probe:N", sort=methods, title="probe on (top-k SAE latents, or the dense activations)")
    y = alt.Y(f"{score}:Q", title=f"test {score}", scale=alt.Scale(domain=[0.4, 1.0]))
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("probe:N"), alt.Tooltip(f"{score}:Q", format=".3f")]
    tasks = (
        alt.Chart(rows[rows["task"] != "mean over tasks"])
        .mark_line(point=True, strokeWidth=1, opacity=0.55)
        .encode(x=x, y=y, color=alt.Color("task:N", scale=alt.Scale(range=PALETTE)), tooltip=tooltip)
    )
    mean = (
        alt.Chart(rows[rows["task"] == "mean over tasks"])
        .mark_line(point=alt.OverlayMarkDef(size=80), strokeWidth=4, color="black")
        .encode(x=x, y=y, tooltip=tooltip)
    )
    return (tasks + mean).properties(height=340)


def absorption_chart(letters: dict):
    """Per first letter: the mean absorption fraction and the full absorption rate over the words the
    LM's probe gets right (SAEBench's first-letter task)."""
    import altair as alt

    rows = pd.DataFrame(
        [
            {"letter": letter, "measure": measure, "value": scores[key], "words": scores["probe_true_positives"]}
            for letter, scores in letters.items()
            for measure, key in (
                ("absorption fraction", "absorption_fraction"),
                ("full absorption", "full_absorption_rate"),
            )
        ]
    )
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("letter:N", title="first letter"),
            xOffset="measure:N",
            y=alt.Y("value:Q", title="share of the probe's true positives", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("measure:N", title=None, scale=alt.Scale(range=["#B279A2", "#E45756"])),
            tooltip=["letter:N", "measure:N", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("words:Q")],
        )
        .properties(height=220)
    )


def label_score_histogram(scores: pd.Series):
    """How well the labels pick out their features' texts: each scored label's AUROC (0.5 is chance)."""
    import altair as alt

    return (
        alt.Chart(pd.DataFrame({"score": scores.dropna()}))
        .mark_bar(color="#54A24B")
        .encode(
            x=alt.X("score:Q", bin=alt.Bin(extent=[0, 1], step=0.05), title="label score (AUROC; 0.5 = chance)"),
            y=alt.Y("count():Q", title="features"),
            tooltip=[alt.Tooltip("count():Q", title="features")],
        )
        .properties(height=200)
    )
