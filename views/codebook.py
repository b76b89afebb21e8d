"""Codebook: train discrete-latent (VQ) models and see how healthy their codebooks are, side by side."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from latentviz import charts, codebook, estimates, fit, numbers, runs, settings, webapp
from latentviz.configs import QUANTIZERS
from latentviz.errors import LatentvizError

workspace = webapp.store()
query = st.query_params

st.title("Codebook")
webapp.job_status(workspace)

encodings = workspace.encodings()
encodings = encodings[encodings["complete"]]
models = fit.common.models(workspace, fit.vq.KIND)


training_now = webapp.training_panel(workspace, fit.vq.KIND)

# -- train: the form's defaults are the run spec's (runs.VQRun, runs.VQ_TOKENS) ------------------------
if not workspace.read_only and not training_now:
    with st.expander("Train a VQ model", expanded=models.empty):
        unit = st.radio(
            "Quantise",
            ["sentence vectors", "token activations of a language model"],
            horizontal=True,
            key="vq_unit",
            help="Token activations: each token's hidden state at a layer gets one code (e.g. SmolLM2, layer 8).",
        )
        tokens = unit.startswith("token")
        spec = runs.VQ_TOKENS if tokens else runs.VQRun()
        model, training = spec.model, spec.training
        left, middle, right = st.columns(3)
        if tokens:
            dataset = left.selectbox("Dataset", workspace.datasets()["name"].tolist(), key="vq_token_dataset")
            lms = [spec.backbone, settings.DEFAULT_BACKBONE]
            backbone = left.selectbox("Language model", lms, key="vq_token_backbone")
            layer = int(left.number_input("Layer", 0, 64, spec.layer, key="vq_token_layer"))
        else:
            sources = {
                f"{r.dataset} · {r.backbone} layer {r.layer}": (r.dataset, r.backbone) for r in encodings.itertuples()
            }
            source = left.selectbox("Encoded dataset", list(sources), key="vq_source")
            dataset, backbone = sources.get(source, (None, None))
            layer = spec.layer
            if not sources:
                st.info(
                    "No encoded dataset yet: encode one on the Data page (or open the Latent Map, which builds BBC "
                    "News).",
                    icon=":material/dataset:",
                )
        quantizer = middle.selectbox(
            "Quantizer",
            QUANTIZERS,
            index=QUANTIZERS.index(model.quantizer),
            key="vq_quantizer",
            help="vq: codebook loss + straight-through; vq-ema: EMA codebook; fsq: finite scalar; rvq: residual stages",
        )
        steps = right.number_input("Steps", 100, 20_000, training.steps, step=500, key="vq_steps")
        left, middle, right = st.columns(3)
        if quantizer == "fsq":
            levels = left.text_input(
                "Levels",
                ",".join(map(str, model.levels)),
                key="vq_levels",
                help="values per dimension; codebook = their product",
            )
        else:
            size = left.select_slider(
                "Codebook size K", [16, 32, 64, 128, 256, 512, 1024], model.codebook_size, key="vq_size"
            )
        codes_per_text = (
            model.groups if tokens else middle.number_input("Codes per sentence", 1, 16, model.groups, key="vq_codes")
        )
        stages = (
            right.number_input("Stages", 2, 8, model.stages, key="vq_stages") if quantizer == "rvq" else model.stages
        )
        if quantizer != "fsq":
            a, b, c, d = st.columns(4)
            kmeans_init = a.checkbox("k-means init", model.kmeans_init, key="vq_kmeans")
            restart_dead = b.checkbox("Restart dead codes", model.restart_dead, key="vq_restart")
            rotation = c.checkbox("Rotation trick", model.rotation_trick, key="vq_rotation")
            cosine = d.checkbox("Cosine codebook", model.cosine, key="vq_cosine")
        if st.button("Train", type="primary", key="vq_train", disabled=dataset is None):
            options = {"quantizer": quantizer, "groups": int(codes_per_text), "stages": int(stages)}
            if quantizer == "fsq":
                try:
                    options["levels"] = [int(v) for v in levels.split(",")]
                except ValueError:
                    st.error("Levels are integers separated by commas, e.g. 8,5,5,5", icon=":material/error:")
                    st.stop()
            else:
                options.update(
                    codebook_size=size,
                    kmeans_init=kmeans_init,
                    restart_dead=restart_dead,
                    rotation_trick=rotation,
                    cosine=cosine,
                )
            try:
                run = replace(
                    spec,
                    dataset=dataset,
                    backbone=backbone,
                    layer=layer,
                    model=replace(model, **options),
                    training=replace(training, steps=int(steps)),
                )
            except LatentvizError as error:
                st.error(str(error), icon=":material/error:")
                st.stop()
            webapp.start_training(workspace, run)

if models.empty:
    if encodings.empty or workspace.read_only:
        st.info("No VQ model yet.", icon=":material/grid_view:")
    elif not training_now:
        st.info(
            f"**No VQ model yet.** Train one with the form above: the defaults take {estimates.about(estimates.VQ_S)} "
            "on a 2-core laptop; its usage plots, Lorenz curve and codebook map appear here.",
            icon=":material/grid_view:",
        )
    st.stop()

# -- which models ------------------------------------------------------------------------------------
labels = {int(r.id): f"#{r.id} {r.name} · {r.dataset}" for r in models.itertuples()}
wanted = webapp.from_url("models", [], cast=lambda v: [int(m) for m in v.split(",") if int(m) in labels]) or [
    max(labels)
]
chosen = st.multiselect(
    "Models (pick two or more to compare)",
    list(labels),
    default=wanted,
    format_func=labels.get,
    max_selections=4,
    key="vq_models",
)
query["models"] = ",".join(map(str, chosen))
if not chosen:
    st.info("Pick a model above.")
    st.stop()
log_scale = st.toggle("Log scale for usage", value=query.get("log") == "1", key="vq_log")
query["log"] = "1" if log_scale else "0"

books = {labels[m]: codebook.codebook(workspace, m) for m in chosen}
columns = st.columns(len(books))
for column, (name, book) in zip(columns, books.items(), strict=True):
    with column:
        st.subheader(name)
        held = book.held_out
        stage = " (stage 1)" if book.stages > 1 else ""  # each residual stage is its own codebook
        a, b, c = st.columns(3)
        a.metric(
            "Perplexity" + stage,
            numbers.figure(held.get("perplexity", float("nan"))),
            help=f"exp(entropy) of held-out code use; at most K = {book.size}",
        )
        b.metric(
            "Utilisation" + stage, numbers.share(held.get("utilisation", 0), 0), help="used codes / K on held-out texts"
        )
        c.metric("Dead codes" + stage, numbers.count(held.get("dead_codes", 0)), help="codes no held-out text received")
        if book.stages > 1:
            st.caption(
                " · ".join(
                    f"stage {n}: perplexity {held[f'stage{n}_perplexity']:.1f}, "
                    f"{held[f'stage{n}_utilisation']:.0%} used"
                    for n in range(2, book.stages + 1)
                    if f"stage{n}_perplexity" in held
                )
            )
        st.caption(
            f"K = {numbers.count(book.size)} · Gini {numbers.figure(book.gini)} · reconstruction MSE "
            f"{numbers.figure(held.get('reconstruction', float('nan')))}"
            + (
                f" · NMI {numbers.figure(held['nmi'])} · purity {numbers.figure(held['purity'])}"
                if "nmi" in held
                else ""
            )
        )
        st.altair_chart(charts.usage_chart(book.usage, log_scale), width="stretch")

st.subheader("Evenness of use")
st.altair_chart(charts.lorenz_chart({name: book.lorenz for name, book in books.items()}), width="stretch")
st.subheader("During training (held-out)")
curves = pd.concat([book.curves.assign(model=name) for name, book in books.items()])
st.altair_chart(charts.curves_chart(curves))

# -- one model in detail -----------------------------------------------------------------------------
detail = webapp.from_url("detail", chosen[0], chosen, int)
name = st.selectbox("Look inside", list(books), index=chosen.index(detail), key="vq_detail")
query["detail"] = str(books[name].model_id)
book = books[name]
left, right = st.columns(2)
with left:
    st.markdown("**Codebook vectors** (PCA), sized by use; red crosses are dead")
    if book.vectors.empty:
        st.info("Too few codes in use to draw.")
    else:
        st.altair_chart(charts.codebook_map(book.vectors), width="stretch")
with right:
    st.markdown("**Codes × labels**")
    if book.by_label.empty:
        st.info("This dataset has no labels.")
    else:
        st.altair_chart(charts.label_heatmap(book.by_label), width="stretch")
used = book.usage[~book.usage["dead"]]
options = used["code"].tolist()
wanted_code = webapp.from_url("code", options[0], options, int)
code = st.selectbox(
    "Texts of code",
    options,
    index=options.index(wanted_code),
    key="vq_code",
    format_func=lambda c: f"code {c} ({int(used.set_index('code').loc[c, 'count'])} uses)",
)
query["code"] = str(code)
st.dataframe(codebook.examples(workspace, book.model_id, int(code)), hide_index=True, key="vq_examples")
