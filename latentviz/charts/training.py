"""Charts of training and of what a model learned (Altair: at most a few thousand marks): training
curves, the VQ codebook's use, the VAE's KL per dimension, an SAE feature's activations."""

from __future__ import annotations

import pandas as pd

from latentviz import numbers

# -- codebook charts (Altair: at most a few thousand marks) --------------------------------------


def usage_chart(usage: pd.DataFrame, log: bool = False):
    """Codes sorted by how often they are used; dead codes (never used) in red at the baseline."""
    import altair as alt

    x = alt.X(
        "rank:Q",
        title="codes, most used first (dead codes red)",
        scale=alt.Scale(domain=[0, len(usage)], nice=False),
        axis=alt.Axis(format=numbers.COUNT_D3, tickMinStep=1),  # whole codes, even for a small codebook
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
                axis=alt.Axis(format=numbers.COUNT_D3),
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
            # steps as 1,500 and figures to 4 significant digits, as 250, 0.0021 or 32 (latentviz.numbers)
            # (not "1.5k", "2.5e+2", or a one-point curve's raw 130.407 and an L0 of 31.9983)
            x=alt.X("step:Q", axis=alt.Axis(format=numbers.COUNT_D3)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=numbers.FIGURE_D3)),
            color=alt.Color(
                "model:N", scale=alt.Scale(scheme="tableau10"), legend=alt.Legend(orient="bottom", labelLimit=0)
            ),
            tooltip=[
                "model",
                "metric",
                alt.Tooltip("step:Q", format=numbers.COUNT_D3),
                alt.Tooltip("value:Q", format=numbers.FIGURE_D3),
            ],
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
            # every column named (Vega drops every other overlapping label by default)
            x=alt.X("label:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=0, labelOverlap=False)),
            y=alt.Y(
                "code:N",
                sort=[str(c) for c in totals.index],
                title=f"code (top {len(totals)})",
                axis=alt.Axis(labelOverlap=False),  # every row named, not every other one
            ),
            color=alt.Color(
                "count:Q", scale=alt.Scale(scheme="blues"), legend=alt.Legend(format=numbers.COUNT_D3, title="texts")
            ),
            tooltip=["code", "label", alt.Tooltip("count:Q", format=numbers.COUNT_D3)],
        )
        .properties(height=max(200, 18 * len(totals)))
    )


def codebook_map(vectors: pd.DataFrame):
    """Codebook vectors in 2-D (PCA), used codes sized by use; dead codes as red crosses of one fixed,
    visible size (sized by use they would vanish), drawn on top."""
    import altair as alt

    x, y = alt.X("x:Q", title=None, axis=None), alt.Y("y:Q", title=None, axis=None)
    tips = ["code", alt.Tooltip("count:Q", title="texts", format=numbers.COUNT_D3)]
    used = (
        alt.Chart(vectors[vectors["count"] > 0])
        .mark_circle(color="#4C78A8", opacity=0.7)
        .encode(x=x, y=y, size=alt.Size("count:Q", scale=alt.Scale(range=[20, 400]), legend=None), tooltip=tips)
    )
    dead = (
        alt.Chart(vectors[vectors["count"] == 0])
        .mark_point(shape="cross", filled=True, color="#E45756", size=90, opacity=0.9)
        .encode(x=x, y=y, tooltip=tips)
    )
    return (used + dead).properties(height=300)


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
            tooltip=["dimension", alt.Tooltip("KL:Q", format=numbers.FIGURE_D3)],
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
            y=alt.Y("tokens:Q", title="tokens", axis=alt.Axis(format=numbers.COUNT_D3)),
            tooltip=[
                alt.Tooltip("start:Q", title="from", format=numbers.FIGURE_D3),
                alt.Tooltip("end:Q", title="to", format=numbers.FIGURE_D3),
                alt.Tooltip("tokens:Q", format=numbers.COUNT_D3),
            ],
        )
        .properties(height=180)
    )
