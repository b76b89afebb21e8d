"""Charts of the SAE evaluations (Altair): scores with their intervals, the L0–FVU frontier, sparse
probing, absorption, label scores and SAE-to-SAE matches."""

from __future__ import annotations

import pandas as pd

from latentviz import numbers
from latentviz.charts.maps import PALETTE

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
        alt.Tooltip("value:Q", format=numbers.FIGURE_D3),
        alt.Tooltip("low:Q", format=numbers.FIGURE_D3),
        alt.Tooltip("high:Q", format=numbers.FIGURE_D3),
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
        alt.Tooltip("d_sae:Q", format=numbers.COUNT_D3),
        alt.Tooltip("l0:Q", title="L0", format=numbers.FIGURE_D3),
        alt.Tooltip("fvu:Q", title="FVU", format=numbers.FIGURE_D3),
        alt.Tooltip("measured:N", title="figures from"),
    ]
    base = alt.Chart(rows).encode(
        x=alt.X("l0:Q", title="L0 (active latents per token)", scale=alt.Scale(type="log")),
        y=alt.Y(
            "fvu:Q",
            title="FVU (share of variance unexplained)",
            scale=alt.Scale(zero=False),
            axis=alt.Axis(format=numbers.FIGURE_D3),
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
                alt.Tooltip("cosine:Q", format=numbers.FIGURE_D3),
                alt.Tooltip("correlation:Q", format=numbers.FIGURE_D3),
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
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("probe:N"), alt.Tooltip(f"{score}:Q", format=numbers.FIGURE_D3)]
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
            tooltip=["letter:N", "measure:N", alt.Tooltip("value:Q", format=numbers.FIGURE_D3), alt.Tooltip("words:Q")],
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
