"""Text VAE · Arithmetic: add an attribute direction to a sentence, z + α·(mean z|A − mean z|B)."""

import numpy as np
import streamlit as st

from latentviz import markup, steps, webapp

workspace = webapp.store()
query = st.query_params
st.title("Latent arithmetic")
space = webapp.pick_vae(workspace)
names = space.labels()
if len(names) < 2:
    st.info(
        "Arithmetic adds the difference between two labels' mean latents, and this dataset has fewer than two labels. "
        "Train a VAE on a labelled dataset (BBC News has five topics).",
        icon=":material/label_off:",
    )
    st.stop()

default = space.examples(1)[0]
text = webapp.text_param("text", default, "Sentence")
left, middle, right = st.columns(3)
# The example, "sport" minus "business", where the labels exist; else the first two.
default_plus, default_minus = ("sport", "business") if {"sport", "business"} <= set(names) else (names[1], names[0])
plus = left.selectbox("Add (A)", names, index=names.index(webapp.from_url("plus", default_plus, names)), key="vae_plus")
minus = middle.selectbox(
    "Subtract (B)", names, index=names.index(webapp.from_url("minus", default_minus, names)), key="vae_minus"
)
top = right.slider("Largest α", 0.5, 4.0, max(steps.ARITHMETIC.alpha), 0.5, key="vae_alpha")
query["plus"], query["minus"] = plus, minus
if plus == minus:
    st.info("Pick two different labels.")
    st.stop()
if not text:
    st.info("Type a sentence.")
    st.stop()

alphas = np.round(np.linspace(0, top, len(steps.ARITHMETIC.alpha)), 2).tolist()
with st.spinner("Decoding…"):
    result = space.arithmetic(text, plus, minus, alphas)
st.markdown(f"z(sentence) + α · (mean z | **{plus}** − mean z | **{minus}**)")
texts = result["text"].tolist()
st.html(markup.changes_table([f"α = {alpha:g}" for alpha in result["alpha"]], texts, [texts[0]] * len(texts)))
st.caption("Highlighted: words that differ from α = 0 (the plain reconstruction).")

mu, _ = space.latents([text])
shifted = mu[0] + top * (space.label_mean(plus) - space.label_mean(minus))
st.subheader(f"Nearest dataset sentences at α = {top:g}")
st.dataframe(space.neighbours(shifted, 8)[["distance", "label", "text"]], hide_index=True, key="vae_arith_neighbours")
