"""Sparse autoencoder · Features: every feature's statistics in one sortable list (or on a map of
every feature), and one feature's dashboard: activation histogram, top and interval examples with
per-token shading, logit effects, neighbours by decoder cosine, co-occurring features."""

import pandas as pd
import streamlit as st

from latentviz import charts, features, markup, numbers, runs, webapp

workspace = webapp.store()
query = st.query_params
st.title("SAE features")
webapp.job_status(workspace)
model_id, model_row = webapp.pick_sae(workspace)
webapp.sae_figures(model_row["metrics"])
stats = webapp.sae_statistics(workspace, model_id)


PLACEMENTS = {"texts": "the texts they fire in", "decoder": "their decoder directions"}
COLOURS = {"topic": "topic", "density": "firing density"}


@st.cache_data(max_entries=4, show_spinner="Laying out every feature (UMAP)…")
def load_map(db: str, model_id: int, place_by: str) -> pd.DataFrame:
    return features.feature_map(workspace, model_id, stats, place_by)  # fixed once built, as the statistics are


# -- the list ------------------------------------------------------------------------------------------
left, right = st.columns([1, 2])
min_density = left.select_slider(
    "Minimum density",
    [0.0, 1e-5, 1e-4, 1e-3, 1e-2],
    0.0,
    key="sae_min_density",
    format_func=lambda v: "any" if v == 0 else f"{v:g}",
)
search = right.text_input("Label contains", query.get("q", ""), key="sae_search", placeholder="e.g. market")
query["q"] = search
shown = features.filtered(stats, min_density, search)
filtered = bool(search) or min_density > 0
st.caption(
    f"{numbers.count(len(shown))} of {numbers.count(len(stats))} features; click a row to open it, click a "
    "header to sort."
)
scored = shown["label_score"].notna().any()
table = st.dataframe(
    shown[["feature", "label", *(["label_score"] if scored else []), "label_confidence", "density", "max"]],
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="sae_table",
    height=280,
    column_config={
        "density": st.column_config.NumberColumn(format="%.2e"),
        "max": st.column_config.NumberColumn(format="%.2f"),
        "label": st.column_config.TextColumn(help="the whole words most common among its top examples"),
        "label_score": st.column_config.NumberColumn(
            "label score",
            format="%.2f",
            help="how well the label picks out the texts it fires on (AUROC of MiniLM similarity, 0.5 = chance): "
            "scored on the Evaluate page",
        ),
        "label_confidence": st.column_config.ProgressColumn(
            "label fit", help="share of its top examples on the label's first word", min_value=0.0, max_value=1.0
        ),
    },
)
picked = webapp.new_pick("sae_last_row", [int(shown.iloc[i]["feature"]) for i in table.selection.rows])
if picked is not None:
    query["feature"] = str(picked)
if st.toggle(
    "Map of all features",
    value=query.get("map") == "1",
    key="sae_map_toggle",
    help="UMAP of the features, placed by the texts they fire in (features of the same texts together) or by "
    "their decoder directions, coloured by topic (the label most of its texts carry) or firing density; the "
    "list's filter in colour, the rest grey; click a point to open that feature",
):
    query["map"] = "1"
    left, right = st.columns(2)
    place_by = webapp.url_radio(
        left, "Place features by", PLACEMENTS, "map_by", features.MAP_PLACEMENTS[0], "sae_map_by"
    )
    colour = webapp.url_radio(right, "Colour by", COLOURS, "map_colour", "topic", "sae_map_colour")
    points = load_map(str(workspace.path), model_id, place_by)
    if colour == "topic" and (points["topic"] == "").all():
        st.caption("This dataset has no labels, so features have no topic: coloured by density instead.")
        colour = "density"
    chosen = webapp.from_url("feature", None, cast=int)
    clicked = st.plotly_chart(
        charts.feature_map_figure(points, chosen, set(shown["feature"]) if filtered else None, colour),
        key="sae_map",
        on_select="rerun",
        selection_mode="points",
        config={"scrollZoom": True, "displaylogo": False},
    )
    clicked_features = [int(p["customdata"]) for p in clicked.selection.points if p.get("customdata") is not None]
    picked = webapp.new_pick("sae_last_click", clicked_features)
    if picked is not None and len(clicked_features) == 1:
        query["feature"] = str(picked)
else:
    query["map"] = "0"
feature = webapp.from_url(
    "feature", features.opening_feature(shown if len(shown) else stats), set(stats["feature"]), int
)
query["feature"] = str(feature)

# -- one feature ---------------------------------------------------------------------------------------
row = stats.set_index("feature").loc[feature]
labels_of = stats.set_index("feature")["label"]
st.subheader(f"Feature {feature}: {row['label'] or '(never fired)'}")
st.caption(
    f"fires on {numbers.count(int(row['fires']))} tokens (density {numbers.density(row['density'])}) · max "
    f"{numbers.figure(row['max'])} · mean "
    f"{numbers.figure(row['mean'])} · label on {numbers.share(row['label_confidence'], 0)} of its top examples"
    + ("" if pd.isna(row["label_score"]) else f" · label score {numbers.figure(row['label_score'])} (0.5 = chance)")
    if row["fires"]
    else "This feature never fired on the captured tokens."
)
explained = workspace.explanations(model_id).set_index("feature")
if feature in explained.index:
    llm = explained.loc[feature]
    st.html(markup.explanation(llm["explainer"], llm["explanation"], llm["detection"], llm["fuzzing"]))
if row["fires"]:
    opened = webapp.feature_dashboard(workspace, model_id, runs.facts(model_row)["capture"], feature)
    examples = opened.examples
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Top activations**, one per text (hover a token for its activation)")
        st.html(markup.top_examples(examples[examples["bucket"] == -1], row["max"]))
        st.markdown(
            f"**Across the range** ({features.BUCKETS} equal intervals from 0 to the max; texts not in the top list)"
        )
        intervals = examples[examples["bucket"] >= 0]
        if intervals.empty:
            st.caption("Every text it fires on is among the top activations above.")
        else:
            st.html(markup.interval_examples(intervals, row["max"], features.BUCKETS))
    with right:
        st.altair_chart(charts.activation_histogram(features.histogram(row)), width="stretch")
        linked = opened.links
        words = st.toggle(
            "Whole words only",
            key="sae_whole_words",
            help="tokens that start a word and are letters only, leaving out sub-word pieces and symbols",
        )
        suffix = "_words" if words else ""
        if words and linked["promotes_words"].empty:
            st.caption("These dashboards were built before whole words were kept: build them again to see them.")
        a, b = st.columns(2)
        a.markdown("**Promotes**")
        a.dataframe(linked["promotes" + suffix], hide_index=True, key="sae_promoted")
        b.markdown("**Suppresses**")
        b.dataframe(linked["suppresses" + suffix], hide_index=True, key="sae_suppressed")
        # one above the other, the label column wide: side by side they cut the labels
        near, together = linked["neighbours"], linked["cooccurs"]
        wide_label = {"label": st.column_config.TextColumn(width="large")}
        st.markdown("**Nearest (decoder cosine)**")
        st.dataframe(
            near.assign(label=near["feature"].map(labels_of)), hide_index=True, key="sae_near", column_config=wide_label
        )
        st.markdown("**Fire together** (tokens)")
        st.dataframe(
            together.assign(label=together["feature"].map(labels_of)),
            hide_index=True,
            key="sae_together",
            column_config=wide_label,
        )
st.page_link(
    webapp.SAE_TEXT_PAGE,
    label=f"Steer with feature {feature}, or see which features fire on your text",
    icon=":material/edit_note:",
    query_params={"model": model_id, "feature": feature},
)
