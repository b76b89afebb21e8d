"""Text VAE · Diagnostics: is the latent space alive? KL per dimension, AU, MI and IW-NLL over
training, the collapse verdict, and what the model writes from its prior and from real sentences."""

import streamlit as st

from latentviz import charts, fit, markup, webapp

workspace = webapp.store()
st.title("VAE diagnostics")
space = webapp.pick_vae(workspace)
figures = workspace.model(space.model_id)["metrics"]

if figures["collapsed"]:
    st.error(
        "**Posterior collapse.** The decoder ignores z: no active unit, no mutual information, or every prior sample "
        "decodes to the same sentence. Try free bits, cyclical annealing, word dropout or a smaller β.",
        icon=":material/warning:",
    )
else:
    st.success(
        f"**Alive.** {figures['active_units']} of {space.dim} dimensions are active and z carries "
        f"{figures['mutual_information']:.2f} nats about the sentence.",
        icon=":material/check_circle:",
    )
a, b, c, d, e = st.columns(5)
a.metric(
    "IW-NLL",
    f"{figures['iw_nll']:.1f}",
    help=f"importance-weighted NLL per held-out sentence, nats (K = {figures['iw_samples']})",
)
b.metric(
    "Perplexity",
    f"{figures['perplexity']:.1f}",
    help="exp(NLL / tokens); a token is a word, a punctuation mark or end-of-sentence",
)
c.metric("KL", f"{figures['kl']:.2f}", help="mean KL(q(z|x) ‖ N(0, I)) per held-out sentence, nats")
d.metric("Active units", f"{figures['active_units']} / {space.dim}", help="dimensions with Var_x(E[z_d|x]) > 0.01")
e.metric(
    "Mutual information",
    f"{figures['mutual_information']:.2f}",
    help="I(x; z) by the minibatch aggregate-posterior estimator, nats",
)

left, right = st.columns(2)
with left:
    st.subheader("KL per dimension")
    st.altair_chart(charts.kl_per_dim_chart(figures["kl_per_dim"]), width="stretch")
with right:
    st.subheader("During training (held-out)")
    curves = fit.vae.curves(workspace, space.model_id)
    wanted = ["active units", "mutual information", "IW-NLL (K = 5)", "KL"]
    st.altair_chart(
        charts.curves_chart(curves[curves["metric"].isin(wanted)].assign(model=f"#{space.model_id}"), columns=2)
    )

st.subheader("What it writes")
method = (
    st.segmented_control(
        "Decoding",
        ["beam", "greedy", "sample"],
        default=st.query_params.get("decoding", "beam"),
        key="vae_diag_decoding",
        help="beam search (width 5) finds likelier sentences than greedy decoding",
    )
    or "beam"
)
st.query_params["decoding"] = method


@st.cache_data(show_spinner="Decoding…", max_entries=16)
def writes(model_id: int, method: str) -> tuple[list[str], list[str], list[str]]:
    """Prior samples and reconstructions (seeded, so the same each time): decoded once per model and method."""
    originals = space.examples(4)
    return space.sample(6, method), originals, [space.reconstruct(t, method) for t in originals]


prior, originals, decoded = writes(space.model_id, method)
left, right = st.columns([2, 3])
with left:
    st.markdown("**From the prior** z ~ N(0, I)")
    st.html(markup.table({"decoded": prior}))
with right:
    st.markdown("**Reconstructions** of dataset sentences (from the posterior mean)")
    st.html(markup.table({"sentence": originals, "decoded": decoded}))
text = webapp.text_param("text", "", "Reconstruct your own sentence", placeholder="type a sentence and press Enter")
if text:
    st.markdown("**Decoded**")
    st.text(space.reconstruct(text, method))  # plain text: a decode is never rendered as markdown or HTML
    mu, _ = space.latents([text])
    st.markdown("**Nearest dataset sentences in latent space**")
    st.dataframe(space.neighbours(mu[0], 5)[["distance", "label", "text"]], hide_index=True, key="vae_neighbours")
