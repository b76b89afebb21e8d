"""Text VAE · Traverse: sweep latent directions of one sentence from −3σ to +3σ and read what changes."""

import streamlit as st

from latentviz import markup, steps, webapp

workspace = webapp.store()
query = st.query_params
st.title("Latent traversal")
space = webapp.pick_vae(workspace)

text = webapp.text_param("text", space.examples(1)[0], "Sentence")
kinds = {"dimension": "latent dimensions", "pca": "principal directions", "label": "label direction (A − B)"}
left, middle, right = st.columns([2, 1, 1])
kind = webapp.url_radio(
    left,
    "Sweep",
    kinds,
    "dir",
    "dimension",
    "vae_traverse_kind",
    help="σ is the spread of the dataset's posterior means along the direction",
)
counts = [3, 5, 7, 9, 11]
count = middle.select_slider(
    "Steps", counts, webapp.from_url("steps", steps.TRAVERSE.steps, counts, int), key="vae_traverse_steps"
)
query["steps"] = str(count)
method = right.selectbox("Decoding", webapp.DECODINGS, key="vae_traverse_decoding")

labels = None
indices = space.informative_dimensions(6) if kind == "dimension" else list(range(6))
if kind == "label":
    names = space.labels()
    if len(names) < 2:
        st.info("This dataset has fewer than two labels: pick latent dimensions or principal directions instead.")
        st.stop()
    a, b = st.columns(2)
    label_a = a.selectbox("A", names, index=names.index(webapp.from_url("a", names[0], names)), key="vae_traverse_a")
    label_b = b.selectbox("B", names, index=names.index(webapp.from_url("b", names[1], names)), key="vae_traverse_b")
    query["a"], query["b"] = label_a, label_b
    if label_a == label_b:
        st.info("Pick two different labels.")
        st.stop()
    labels = (label_a, label_b)
elif kind == "dimension":
    st.caption("The six dimensions whose posterior means vary most over the dataset.")
if not text:
    st.info("Type a sentence to traverse.")
    st.stop()

with st.spinner("Decoding…"):
    reference = space.reconstruct(text, method)
    grid = space.traverse(text, kind, indices, labels, count, method)
st.markdown("**Reconstruction** (offset 0); changed words are highlighted in the grid")
st.text(reference)
st.html(markup.traversal_table(grid, reference))
