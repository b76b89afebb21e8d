"""Sparse autoencoder · Features: every feature's statistics in one sortable list, and one feature's
dashboard: activation histogram, top and interval examples with per-token shading, logit effects,
neighbours by decoder cosine, co-occurring features. Text → features at the bottom."""

import html
from dataclasses import replace
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from latentviz import charts, features, fit, jobs, markup, runs, settings, webapp
from latentviz.models.sae import ARCHITECTURES

workspace = webapp.store()
query = st.query_params
st.title("SAE features")
webapp.job_status(workspace)


models = fit.common.models(workspace, fit.sae.KIND)
spec = runs.SAE_QUICK  # the form's defaults: a first SAE in a few minutes
training_now = webapp.training_panel(workspace, fit.sae.KIND)
if not training_now and not workspace.read_only and not workspace.datasets().empty:
    model = spec.model
    with st.expander("Train an SAE", expanded=models.empty):
        left, middle, right = st.columns(3)
        dataset = left.selectbox("Dataset", workspace.datasets()["name"].tolist(), key="sae_dataset")
        layer = left.number_input(
            "SmolLM2 layer", 1, 30, spec.layer, key="sae_layer", help="the block whose activations are read"
        )
        sites = list(settings.SITES)
        site = left.selectbox(
            "Read at", sites, index=sites.index(spec.site), format_func=settings.SITES.get, key="sae_site"
        )
        architecture = middle.selectbox(
            "Architecture",
            ARCHITECTURES,
            index=ARCHITECTURES.index(model.architecture),
            key="sae_arch",
            help="standard = ReLU with an L1 penalty",
        )
        width = middle.select_slider("Latents", [576, 1152, 2304, 4608, 9216], model.d_sae, key="sae_width")
        k = right.number_input("k (TopK variants)", 1, 256, model.k, key="sae_k")
        max_tokens = right.select_slider(
            "Tokens to capture",
            [10_000, 30_000, 100_000, 300_000],
            spec.max_tokens,
            key="sae_tokens",
            format_func="{:,}".format,
        )
        steps = right.number_input(
            "Steps",
            50,
            20_000,
            spec.training.steps,
            step=50,
            key="sae_steps",
            help=f"a step is a batch of {spec.training.batch_size:,} tokens; about 0.6 s on 2 CPU cores "
            "at 4,608 latents",
        )
        if st.button("Train", type="primary", key="sae_train"):
            run = replace(
                spec,
                dataset=dataset,
                layer=int(layer),
                site=site,
                max_tokens=int(max_tokens),
                model=replace(model, architecture=architecture, d_sae=int(width), k=int(k)),
                training=replace(spec.training, steps=int(steps)),
            )
            webapp.start_training(workspace, fit.sae.KIND, run)
if models.empty:
    if workspace.datasets().empty:
        st.info(
            "**No data yet.** Open the Latent Map to build BBC News, or add text on the Data page.",
            icon=":material/dataset:",
        )
    elif not training_now:
        st.info(
            f"**No SAE yet.** Train one above: {spec.training.steps} steps on {spec.max_tokens:,} SmolLM2 tokens take "
            "a few minutes on 2 CPU cores.",
            icon=":material/hub:",
        )
    st.stop()
model_id = webapp.pick_model(models, "SAE", "sae_model")
model_row = workspace.model(model_id)
figures = model_row["metrics"]
if "l0" in figures:
    a, b, c, d, e = st.columns(5)
    a.metric("L0", f"{figures['l0']:.1f}", help="mean active latents per held-out token")
    b.metric("Explained variance", f"{figures['explained_variance']:.1%}", help="1 − FVU, FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖²")
    c.metric("Cosine", f"{figures['cosine']:.3f}", help="mean cos(x, x̂) over held-out tokens")
    d.metric(
        "Dead latents",
        f"{figures['dead_latents']:,}",
        help=f"never fired over {figures['dead_window_tokens']:,} held-out tokens",
    )
    e.metric(
        "CE loss recovered",
        f"{figures['ce_loss_recovered']:.1%}",
        help=f"(CE_zero − CE_sae) / (CE_zero − CE_clean); Δ LM loss {figures['delta_lm_loss']:.3f} nats/token",
    )


@st.cache_data(max_entries=4, show_spinner="Reading the feature dashboards…")
def load_stats(db: str, model_id: int) -> pd.DataFrame:
    return features.statistics(workspace, model_id)  # fixed once built: the same SAE on the same tokens


stats = load_stats(str(workspace.path), model_id) if workspace.has_feature_dashboards(model_id) else None
if stats is None:
    st.info(
        "**No feature dashboards for this SAE yet.** Building them encodes its captured tokens and works out every "
        "feature's examples, histogram, logit effects, neighbours and co-occurring features at once.",
        icon=":material/bar_chart:",
    )
    if not workspace.read_only and st.button("Build the feature dashboards", type="primary", key="sae_build"):
        jobs.submit(workspace, "features", {"model": model_id})
        st.rerun()
    st.stop()


@st.cache_data(max_entries=4, show_spinner="Laying out every feature by its decoder direction (UMAP)…")
def load_map(db: str, model_id: int) -> pd.DataFrame:
    return features.feature_map(workspace, model_id, load_stats(db, model_id))


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
shown = stats[(stats["density"] >= min_density) & (stats["fires"] > 0)]
if search:
    shown = shown[shown["label"].str.contains(search, case=False, regex=False)]
filtered = bool(search) or min_density > 0
st.caption(f"{len(shown):,} of {len(stats):,} features; click a row to open it, click a header to sort.")
table = st.dataframe(
    shown[["feature", "label", "label_confidence", "density", "max"]],
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="sae_table",
    height=280,
    column_config={
        "density": st.column_config.NumberColumn(format="%.2e"),
        "max": st.column_config.NumberColumn(format="%.2f"),
        "label": st.column_config.TextColumn(help="the whole words most common among its top examples"),
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
    help="UMAP of the decoder directions, coloured by firing density (the list's filter in colour, the rest grey); "
    "click a point to open that feature",
):
    query["map"] = "1"
    chosen = webapp.from_url("feature", None, cast=int)
    clicked = st.plotly_chart(
        charts.feature_map_figure(
            load_map(str(workspace.path), model_id), chosen, set(shown["feature"]) if filtered else None
        ),
        key="sae_map",
        on_select="rerun",
        selection_mode="points",
        config={"scrollZoom": True, "displaylogo": False},
    )
    points = [int(p["customdata"]) for p in clicked.selection.points if p.get("customdata") is not None]
    picked = webapp.new_pick("sae_last_click", points)
    if picked is not None and len(points) == 1:
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
    f"fires on {int(row['fires']):,} tokens (density {row['density']:.2e}) · max {row['max']:.3f} · mean "
    f"{row['mean']:.3f} · label on {row['label_confidence']:.0%} of its top examples"
    if row["fires"]
    else "This feature never fired on the captured tokens."
)
if row["fires"]:
    left, right = st.columns([3, 2])
    with left:
        opened = features.dashboard(workspace, model_id, runs.facts(model_row)["capture"], feature)
        examples = opened.examples
        top = examples[examples["bucket"] == -1]
        st.markdown("**Top activations**, one per text (hover a token for its activation)")
        st.html(
            "".join(
                f"<div style='margin:2px 0'><b>{value:.2f}</b> {markup.token_highlights(context, row['max'])}</div>"
                for value, context in zip(top["value"], top["context"], strict=True)
            )
        )
        st.markdown(
            f"**Across the range** ({features.BUCKETS} equal intervals from 0 to the max; texts not in the top list)"
        )
        intervals = examples[examples["bucket"] >= 0].sort_values("bucket", ascending=False)
        share = 1 / features.BUCKETS
        if intervals.empty:
            st.caption("Every text it fires on is among the top activations above.")
        else:
            st.html(
                "".join(
                    f"<div style='margin:2px 0'><small>{bucket * share:.1f}–{(bucket + 1) * share:.1f}·max</small> "
                    f"{markup.token_highlights(context, row['max'])}</div>"
                    for bucket, context in zip(intervals["bucket"], intervals["context"], strict=True)
                )
            )
    with right:
        st.altair_chart(charts.activation_histogram(features.histogram(row)), width="stretch")
        linked = opened.links
        a, b = st.columns(2)
        a.markdown("**Promotes**")
        a.dataframe(linked["promotes"], hide_index=True, key="sae_promoted")
        b.markdown("**Suppresses**")
        b.dataframe(linked["suppresses"], hide_index=True, key="sae_suppressed")
        a, b = st.columns(2)
        near, together = linked["neighbours"], linked["cooccurs"]
        a.markdown("**Nearest (decoder cosine)**")
        a.dataframe(near.assign(label=near["feature"].map(labels_of)), hide_index=True, key="sae_near")
        b.markdown("**Fire together** (tokens)")
        b.dataframe(together.assign(label=together["feature"].map(labels_of)), hide_index=True, key="sae_together")

# -- text → features -----------------------------------------------------------------------------------
st.subheader("Text → features")
text = webapp.text_param(
    "text", "", "Type a sentence to see which features fire on each token", placeholder="Shares fell sharply."
)
if text:
    with st.spinner("Running the LM and the SAE on your text…"):
        tokens, activations = features.text_activations(workspace, model_id, text)
    strongest = activations.max(0)
    fired = [int(f) for f in strongest.argsort()[::-1] if strongest[f] > 0]
    if not fired:
        st.info("No feature fired on this text.")
    else:
        shade = st.selectbox(
            "Shade the tokens by",
            fired,
            index=fired.index(feature) if feature in fired else 0,
            format_func=lambda f: f"feature {f}: {labels_of.get(f, '')} (max {strongest[f]:.2f})",
            key="sae_shade",
        )
        per_token = [
            [(int(f), float(v[f]), str(labels_of.get(int(f), ""))) for f in v.argsort()[::-1][:3] if v[f] > 0]
            for v in activations
        ]
        here = {name: value for name, value in query.to_dict().items() if name != "feature"}
        st.html(
            markup.feature_tokens(
                tokens,
                activations[:, shade].tolist(),
                per_token,
                lambda f: "?" + urlencode({**here, "feature": f}),
            )
        )
        st.caption("Hover a token for its three strongest features; a feature id opens its dashboard.")

# -- steering ------------------------------------------------------------------------------------------
st.subheader(f"Steer with feature {feature}")
left, right = st.columns([3, 1])
prompt = left.text_input("Prompt", query.get("prompt", "The news today is"), key="sae_prompt")
query["prompt"] = prompt
strength = right.slider(
    "Strength (× max activation)",
    0.0,
    10.0,
    2.0,
    0.5,
    key="sae_strength",
    help="added at every position; beyond ~4 SmolLM2 degenerates into repetition",
)
if prompt and st.button("Generate", key="sae_steer"):
    with st.spinner("Generating twice…"):
        plain, steered = features.steer(workspace, model_id, feature, prompt, strength)
    a, b = st.columns(2)
    a.markdown("**Unsteered**")
    a.html(f"<div>{html.escape(prompt + plain)}</div>")
    b.markdown(f"**Steered** (+{strength:g} × max · feature {feature}); where it departs is marked")
    b.html(f"<div>{html.escape(prompt)}{markup.divergence(plain, steered)}</div>")
