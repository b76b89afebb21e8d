"""Text VAE · Diagnostics: is the latent space alive? KL per dimension, AU, MI and IW-NLL over
training, the collapse verdict, and what the model writes from its prior and from real sentences."""

import streamlit as st

from latentviz import charts, fit, markup, numbers, steps, webapp

workspace = webapp.store()
st.title("VAE diagnostics")
space = webapp.pick_vae(workspace)
figures = workspace.model(space.model_id)["metrics"]

failed = fit.vae.failed_checks(figures, fit.common.run_of(workspace, space.model_id, fit.vae.KIND)[1])
if figures["collapsed"]:
    st.error("**" + failed[0].replace(":", ":**", 1), icon=":material/warning:")
elif failed:
    st.warning(
        f"**Alive, with {len(failed)} warning{'s' if len(failed) > 1 else ''}.** {figures['active_units']} of "
        f"{space.dim} dimensions are active, but:\n" + "\n".join(f"- {line}" for line in failed),
        icon=":material/report:",
    )
else:
    st.success(
        f"**Alive.** {figures['active_units']} of {space.dim} dimensions are active and z carries "
        f"{numbers.figure(figures['mutual_information'])} nats about the sentence; it does not overfit, its "
        "KL is not held at the "
        "free-bits floor and held-out sentences come back recognisably.",
        icon=":material/check_circle:",
    )
unit = figures.get("perplexity_unit", "LM token" if space.model.config.variant == "pretrained-decoder" else "word")
mi_bound = figures.get("mi_bound")
a, b, c, d, e = st.columns(5)
a.metric(
    f"IW-NLL (K = {figures['iw_samples']})",
    numbers.figure(figures["iw_nll"]),
    help=f"importance-weighted NLL per held-out sentence, nats, with K = {figures['iw_samples']} samples "
    "(the curve uses K = 5 on 200 texts: a looser bound)",
)
b.metric(
    f"Perplexity (per {unit})",
    numbers.figure(figures["perplexity"]),
    help="exp(NLL / tokens); "
    + (
        "a token is one of the decoder LM's sub-word tokens, so it does not compare with word-level VAEs"
        if unit == "LM token"
        else "a token is a word, a punctuation mark or end-of-sentence"
    ),
)
c.metric("KL", numbers.figure(figures["kl"]), help="mean KL(q(z|x) ‖ N(0, I)) per held-out sentence, nats")
d.metric("Active units", f"{figures['active_units']} / {space.dim}", help="dimensions with Var_x(E[z_d|x]) > 0.01")
e.metric(
    "MI" + (f" (≤ {numbers.figure(mi_bound)})" if mi_bound else ""),
    numbers.figure(figures["mutual_information"]),
    help="I(x; z), nats, by the minibatch aggregate-posterior estimator (He et al., 2019)"
    + (
        f", averaged over batches of {figures['mi_batch']} texts: it cannot exceed "
        f"ln {figures['mi_batch']} = {numbers.figure(mi_bound)}"
        if mi_bound
        else ""
    ),
)
if figures.get("mi_saturated"):
    st.caption(
        f"MI is near its bound ln {figures['mi_batch']}: within a batch each sentence is told apart, so the estimate "
        "says only that z carries at least this much."
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
        [*webapp.DECODINGS, "sample"],
        default=st.query_params.get("decoding", steps.DECODING.method),
        key="vae_diag_decoding",
        help=f"beam search (width {steps.DECODING.beam}) finds likelier sentences than greedy decoding",
    )
    or steps.DECODING.method
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
