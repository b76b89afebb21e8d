"""Sparse autoencoder · Text & steering: which features fire on each token of a typed text, and a
continuation steered by one feature's decoder direction."""

from urllib.parse import urlencode

import streamlit as st

from latentviz import features, markup, numbers, steps, webapp

workspace = webapp.store()
query = st.query_params
st.title("Text & steering")
model_id, _ = webapp.pick_sae(workspace)
stats = webapp.sae_statistics(workspace, model_id)
labels_of = stats.set_index("feature")["label"]
feature = webapp.from_url("feature", features.opening_feature(stats), set(stats["feature"]), int)

# -- text → features -----------------------------------------------------------------------------------
st.subheader("Text → features")
text = webapp.text_param(
    "text", "", "Type a sentence to see which features fire on each token", placeholder="Shares fell sharply."
)
if text:
    with st.spinner("Running the LM and the SAE on your text…"):
        fired = features.fired_on_text(workspace, model_id, text, labels_of)
    if not fired.features:
        st.info("No feature fired on this text.")
    else:
        shade = st.selectbox(
            "Shade the tokens by",
            fired.features,
            index=fired.features.index(feature) if feature in fired.features else 0,
            format_func=lambda f: f"feature {f}: {labels_of.get(f, '')} (max {numbers.figure(fired.strongest[f])})",
            key="sae_shade",
        )
        st.html(
            markup.feature_tokens(
                fired.tokens,
                fired.activations[:, shade].tolist(),
                fired.top_per_token,
                lambda f: f"{webapp.SAE_FEATURES_URL}?" + urlencode({"model": model_id, "feature": f}),
            )
        )
        st.caption("Hover a token for its three strongest features; a feature id opens its dashboard.")
        st.dataframe(
            fired.table(labels_of),
            hide_index=True,
            key="sae_fired",
            column_config={
                "max activation": st.column_config.NumberColumn(format="%.2f"),
                "label": st.column_config.TextColumn(width="large"),
            },
        )

# -- steering ------------------------------------------------------------------------------------------
st.subheader("Steering")
choices = stats.loc[stats["fires"] > 0, "feature"].tolist() or [feature]
feature = st.selectbox(
    "Feature",
    choices,
    index=choices.index(feature) if feature in choices else 0,
    format_func=lambda f: f"feature {f}: {labels_of.get(f, '')}",
    key="sae_steer_feature",
)
query["feature"] = str(feature)
left, right = st.columns([3, 1])
prompt = left.text_input("Prompt", query.get("prompt", steps.STEER.prompt), key="sae_prompt")
webapp.remember_text("prompt", prompt)
strength = right.slider(
    "Strength (× max activation)",
    0.0,
    10.0,
    steps.STEER.strength,
    0.5,
    key="sae_strength",
    help="added at every position; beyond ~4 SmolLM2 degenerates into repetition",
)
if prompt and st.button("Generate", key="sae_steer"):
    with st.spinner("Generating twice…"):
        result = features.steer(workspace, model_id, feature, prompt, strength)
    a, b = st.columns(2)
    a.markdown("**Unsteered**")
    a.html(markup.plain(prompt + result.plain))
    b.markdown(f"**Steered** (+{strength:g} × max · feature {feature}); where it departs is marked")
    b.html(markup.steered(prompt, result.plain, result.steered))
    before, after = result.activation
    st.caption(
        f"Feature {feature}'s mean activation on each text, read back by the SAE: {numbers.figure(before)} unsteered, "
        f"{numbers.figure(after)} steered"
        + (": the steered text is more about it." if after > before else ": no higher.")
    )
