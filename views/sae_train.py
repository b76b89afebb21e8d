"""Sparse autoencoder · Train: train an SAE on a causal LM's activations (live held-out curves, Stop,
Resume), and each trained SAE's held-out figures."""

from dataclasses import replace

import streamlit as st

from latentviz import estimates, fit, numbers, runs, settings, webapp
from latentviz.configs import ARCHITECTURES

workspace = webapp.store()
st.title("Train an SAE")
webapp.job_status(workspace)

spec = runs.SAE_QUICK  # the form's defaults: a first SAE in minutes (latentviz.estimates)
model = spec.model
training_now = webapp.training_panel(workspace, fit.sae.KIND)
if workspace.datasets().empty:
    st.info(
        "**No data yet.** Open the Latent Map to build BBC News, or add text on the Data page.",
        icon=":material/dataset:",
    )
    st.stop()
if not training_now and not workspace.read_only:
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
        help=f"a step is a batch of {numbers.count(spec.training.batch_size)} tokens; about 0.6 s on 2 "
        "CPU cores at 4,608 latents",
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
        webapp.start_training(workspace, run)

models = fit.common.models(workspace, fit.sae.KIND)
if models.empty:
    if not training_now:
        st.info(
            f"**No SAE yet.** Train one above: {spec.training.steps} steps on "
            f"{numbers.count(spec.max_tokens)} SmolLM2 tokens take "
            f"{estimates.about(estimates.SAE_S)} on 2 CPU cores, its feature dashboards included.",
            icon=":material/hub:",
        )
    st.stop()
st.subheader("Trained SAEs")
model_id = webapp.pick_model(models, "SAE", "sae_model")
webapp.sae_figures(workspace.model(model_id)["metrics"])
st.page_link(
    webapp.SAE_FEATURES_PAGE, label="Browse its features", icon=":material/hub:", query_params={"model": model_id}
)
