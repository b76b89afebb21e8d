"""Text VAE · Interpolate: walk from one sentence to another through the latent space (lerp or
slerp), read each step, and see the path on the VAE's own Latent Map."""

import pandas as pd
import streamlit as st

from latentviz import charts, jobs, markup, numbers, pipeline, steps, webapp

workspace = webapp.store()
query = st.query_params
st.title("Interpolation")
space = webapp.pick_vae(workspace)

first, second = (space.examples(2) + [""])[:2]
left, right = st.columns(2)
with left:
    start = webapp.text_param("from", first, "From")
with right:
    end = webapp.text_param("to", second, "To")
a, b, c = st.columns(3)
method = a.radio(
    "Path",
    ["slerp", "lerp"],
    index=["slerp", "lerp"].index(webapp.from_url("method", steps.INTERPOLATE.method, ["slerp", "lerp"])),
    horizontal=True,
    key="vae_interp_method",
    help="slerp follows the great circle, which keeps the norm typical of Gaussian samples; lerp is the straight line",
)
query["method"] = method
count = b.slider(
    "Steps", 3, 15, webapp.from_url("steps", steps.INTERPOLATE.steps, range(3, 16), int), key="vae_interp_steps"
)
query["steps"] = str(count)
decoding = c.selectbox("Decoding", webapp.DECODINGS, key="vae_interp_decoding")
if not (start and end):
    st.info("Type two sentences.")
    st.stop()

with st.spinner("Decoding the path…"):
    path, smoothness, latents = space.interpolate(start, end, count, method, decoding)
reference = space.smoothness_reference()
st.metric(
    "Smoothness: words changed per step",
    numbers.figure(smoothness),
    help="mean word edit distance between consecutive decodes; lower is smoother",
)
st.caption(
    f"Lower is smoother. For scale: two random sentences of this dataset differ by {numbers.figure(reference)} words."
)
previous = [path["text"].iloc[0]] + path["text"].tolist()[:-1]
st.html(markup.changes_table([f"t = {t:.2f}" for t in path["t"]], path["text"].tolist(), previous))
st.caption("Highlighted: the words that changed from the step before.")

st.subheader("The path on this VAE's map")
map_id = space.map_id()
if map_id is None:
    if jobs.running(workspace).empty and not workspace.read_only:
        st.info("This VAE's latent space has no map yet.", icon=":material/scatter_plot:")
        if st.button("Map its latent space (UMAP)", key="vae_map"):
            jobs.submit(workspace, "project", {"encoding": space.encoding_id(), "method": "umap"})
            st.rerun()
    webapp.job_status(workspace)
else:
    with st.spinner("Placing the path on the map…"):  # UMAP's placement compiles on first use: ~30 s once
        placed = pipeline.place_vectors(workspace, map_id, latents.astype("float32"), path["text"].tolist(), k=1)
    points = charts.with_hover(workspace.projection_points(map_id))
    colour = "label" if points["label"].notna().any() else None
    st.plotly_chart(
        charts.map_figure(points, colour, path=placed.points, height=520),
        key="vae_path_map",
        config={"scrollZoom": True, "displaylogo": False},
    )
    st.caption(
        "The dataset's sentences at their posterior means; the line is the decoded path, hover a step to read it."
    )
    st.dataframe(
        pd.DataFrame(
            {"t": path["t"].round(2), "nearest dataset sentence": [n["text"].iloc[0] for n in placed.neighbours]}
        ),
        hide_index=True,
        key="vae_path_neighbours",
    )
