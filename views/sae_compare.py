"""Sparse autoencoder · Compare: which features of one SAE another also learnt (another seed, width,
architecture or layer): PW-MCC, matched / split / absorbed / unmatched features, match quality against
density, and both dashboards of a pair side by side."""

import pandas as pd
import streamlit as st

from latentviz import charts, evals, fit, jobs, markup, numbers, runs, steps, webapp

workspace = webapp.store()
st.title("Compare two SAEs")
webapp.job_status(workspace)
model_id, model_row = webapp.pick_sae(workspace)
others = fit.common.models(workspace, fit.sae.KIND).query("id != @model_id and backbone == @model_row['backbone']")
if others.empty:
    st.info(
        "**Nothing to compare with yet.** Train a second SAE on the same LM (another seed, width or architecture) on "
        "the Train page, or import one, and its features are matched to this one's here.",
        icon=":material/compare_arrows:",
    )
    st.page_link(webapp.SAE_TRAIN_PAGE, label="Train another SAE", icon=":material/model_training:")
    st.stop()
labels = {int(r.id): f"#{r.id} {r.name} · {r.dataset}" for r in others.itertuples()}
other_id = st.selectbox(
    "Against",
    list(labels),
    index=list(labels).index(webapp.from_url("other", max(labels), labels, int)),
    format_func=labels.get,
    key="sae_other",
)
st.query_params["other"] = str(other_id)

found = workspace.comparison(model_id, other_id)
spec = steps.COMPARE
st.caption(
    f"Each feature of #{model_id} is paired with one of #{other_id} by Hungarian matching on decoder cosine "
    f"(matched at cosine ≥ {spec.threshold:g}), and both SAEs' activations on up to "
    f"{numbers.count(spec.tokens)} shared captured "
    "tokens are correlated. Seconds for SmolLM2-sized SAEs."
)
waiting = jobs.active(workspace)["kind"].eq("compare").any()
if not workspace.read_only and not waiting:
    if st.button("Match again" if found else "Match features", type="primary", key="sae_compare"):
        jobs.submit(workspace, "compare", {"a": model_id, "b": other_id})
        st.rerun()
if found is None:
    st.info("**Not matched yet.** Match them to see which features both learnt.", icon=":material/compare_arrows:")
    st.stop()

summary, matches = found
a, b, c, d, e = st.columns(5)
a.metric("PW-MCC (decoder)", numbers.figure(summary["pw_mcc_decoder"]), help="mean decoder cosine of the matched pairs")
correlation = summary["pw_mcc_activations"]
b.metric(
    "PW-MCC (activations)",
    numbers.figure(correlation),
    help=f"mean activation correlation of pairs matched on {numbers.count(summary['tokens'])} shared "
    "tokens (latents that fired)",
)
c.metric(
    "Matched",
    numbers.share(summary["matched_share"], 0),
    help=f"{numbers.count(summary['matched'])} of {numbers.count(len(matches))} features",
)
d.metric(
    "Split · absorbed",
    f"{numbers.count(summary['split'])} · {numbers.count(summary['absorbed'])}",
    help=evals.matching.__doc__,
)
e.metric("Unmatched", numbers.count(summary["unmatched"]))

chart = st.altair_chart(charts.match_chart(matches), width="stretch", on_select="rerun", key="sae_match_chart")
kind = st.segmented_control("Show", evals.matching.KINDS, default="matched", key="sae_match_kind")
shown = matches if kind is None else matches[matches["kind"] == kind]
table = st.dataframe(
    shown,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    height=240,
    key="sae_match_table",
    column_config={
        "density": st.column_config.NumberColumn(format="%.2e"),
        "partner_density": st.column_config.NumberColumn(format="%.2e"),
    },
)
clicked = [int(p["feature"]) for p in chart.selection.get("pair", []) if "feature" in p]
from_chart = webapp.new_pick("sae_match_click", clicked)
from_table = webapp.new_pick("sae_match_row", [int(shown.iloc[i]["feature"]) for i in table.selection.rows])
picked = from_chart if from_chart is not None else from_table
if picked is not None:
    st.query_params["feature"] = str(picked)
feature = webapp.from_url("feature", evals.matching.opening_pair(matches), set(matches["feature"]), int)
st.query_params["feature"] = str(feature)
pair = matches.set_index("feature").loc[feature]
st.subheader(f"Feature {feature} of #{model_id} and feature {int(pair['partner'])} of #{other_id}: {pair['kind']}")
st.caption(
    f"decoder cosine {numbers.figure(pair['cosine'])}"
    + ("" if pd.isna(pair["correlation"]) else f" · activation correlation {numbers.figure(pair['correlation'])}")
)


def card(column, sae_id: int, row: dict, feature: int) -> None:
    with column:
        st.markdown(f"**SAE #{sae_id} · feature {feature}**")
        capture = runs.facts(row).get("capture")
        if capture is None or not workspace.has_feature_dashboards(sae_id):
            st.caption("Its dashboards are not built: build them on the Features page to see its examples here.")
            return
        stats = webapp.sae_statistics(workspace, sae_id).set_index("feature").loc[feature]
        st.caption(
            f"{stats['label'] or '(no label)'} · density {numbers.density(stats['density'])} · max "
            f"{numbers.figure(stats['max'])}"
        )
        if stats["fires"]:
            examples = webapp.feature_dashboard(workspace, sae_id, capture, feature).examples
            st.html(markup.top_examples(examples[examples["bucket"] == -1].head(6), stats["max"]))


left, right = st.columns(2)
card(left, model_id, model_row, feature)
card(right, other_id, workspace.model(other_id), int(pair["partner"]))
