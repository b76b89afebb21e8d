"""Sparse autoencoder · Evaluate: SAEBench's core figures of one SAE with bootstrap intervals (CE loss
recovered, KL, shrinkage), sparse probing against the dense activations, first-letter absorption, scored
feature labels, and the L0–FVU frontier of every SAE that reads the same activations."""

import pandas as pd
import streamlit as st

from latentviz import charts, estimates, evals, jobs, numbers, steps, webapp

workspace = webapp.store()
st.title("Evaluate an SAE")
webapp.job_status(workspace)
model_id, model_row = webapp.pick_sae(workspace)

stored = workspace.evaluations(model_id).set_index("name")
spec = steps.EVALUATE
waiting = jobs.active(workspace)["kind"].eq("evaluate").any()


def section(name: str, title: str):
    """An evaluation's stored row under its heading; None (after saying why) when it was not measured."""
    if name not in stored.index:
        return None
    st.subheader(title)
    row = stored.loc[name]
    if "not_measured" in row["figures"]:
        st.caption(f"Not measured: {row['figures']['not_measured']}.")
        return None
    return row


tasks = len(spec.probe_datasets)
st.caption(
    f"**What runs:** the LM three times over up to {spec.texts} held-out texts the SAE never trained on (clean, with "
    f"the SAE's reconstruction spliced in at its layer, and with zeros there), each score with a 95% interval from "
    f"{numbers.count(spec.resamples)} bootstrap resamples over the texts; then sparse probing on {tasks} "
    "sae-probes tasks and the "
    f"dataset's labels, {spec.probe_train} + {spec.probe_test} texts each; then first-letter absorption on "
    f"{numbers.count(spec.absorption_words)} of the LM's words; then every feature label scored against its "
    "texts. A few "
    "minutes for SmolLM2 on 2 CPU cores."
)
if stored.empty:
    st.info(
        "**Not evaluated yet.** Evaluate it to see CE loss recovered and KL divergence with intervals, its "
        "shrinkage, and how well a few of its latents probe for concepts.",
        icon=":material/rule:",
    )
if not workspace.read_only and not waiting:
    explain = st.checkbox(
        f"Also explain {spec.explain_features} features with an LLM ({spec.explainer}) and score the explanations",
        key="sae_explain",
        help="delphi's detection and fuzzing scorers, one prompt per held-out window: "
        f"{estimates.about(spec.explain_features * estimates.EXPLAINED_FEATURE_S)} with SmolLM2 on a CPU. SmolLM2-135M "
        "was too small to explain or judge here (its scores sat at chance): give a larger instruct model if you can",
    )
    explainer = spec.explainer
    if explain:
        explainer = st.text_input(
            "Explainer", spec.explainer, key="sae_explainer", help="smollm2, a causal LM's folder or a hub id"
        )
    if st.button("Evaluate" if stored.empty else "Evaluate again", type="primary", key="sae_evaluate"):
        chosen = spec.evaluations + (["explanations"] if explain else [])
        jobs.submit(workspace, "evaluate", {"model": model_id, "evaluations": chosen, "explainer": explainer})
        st.rerun()
core = section("core", "Faithfulness, with uncertainty")
if core is not None:
    figures = core["figures"]
    a, b, c, d = st.columns(4)

    def interval(name):
        low, high = figures[f"{name}_interval"]
        return f"95% interval {numbers.figure(low)} – {numbers.figure(high)}"

    a.metric(
        "CE loss recovered",
        numbers.share(figures["ce_loss_score"]),
        help=f"(CE_zero − CE_sae) / (CE_zero − CE_clean); {interval('ce_loss_score')}",
    )
    b.metric(
        "KL score",
        numbers.share(figures["kl_div_score"]),
        help=f"(KL_zero − KL_sae) / KL_zero, KL(P_clean ‖ P_spliced) per token; {interval('kl_div_score')}",
    )
    c.metric(
        "KL with the SAE",
        numbers.figure(figures["kl_div_with_sae"]),
        help=f"nats per predicted token; zeroed: {numbers.figure(figures['kl_div_with_ablation'])}; "
        f"{interval('kl_div_with_sae')}",
    )
    d.metric(
        "Shrinkage γ",
        numbers.figure(figures["relative_reconstruction_bias"]),
        help="E‖x̂‖² / E[x·x̂], the scale that best undoes the reconstruction's bias: below 1 it shrinks; "
        + interval("relative_reconstruction_bias"),
    )
    st.altair_chart(charts.score_intervals(figures), width="stretch")
    st.caption(
        f"On {figures['texts']} held-out texts of {figures['dataset']!r}: "
        f"{numbers.count(figures['predicted_tokens'])} predicted "
        f"tokens, {numbers.count(figures['spliced_tokens'])} spliced · L0 {numbers.figure(figures['l0'])} · "
        f"FVU {numbers.figure(figures['fvu'])} · "
        f"took {estimates.duration(core['seconds'])} · {core['created']:%Y-%m-%d %H:%M}"
    )

probed = section("probing", "Sparse probing: do a few latents carry a concept?")
if probed is not None:
    found = probed["figures"]
    mean = found["mean"]
    best = max((m for m in mean if m != "dense"), key=lambda m: mean[m]["accuracy"])
    st.caption(
        f"Test accuracy of a logistic probe on the top-k latents (chosen by class-mean difference on the training "
        f"texts) against the same probe on all {model_row['config']['model']['d_in']} dense dimensions, over "
        f"{len(found['tasks'])} tasks: mean {numbers.figure(mean['k=1']['accuracy'])} with one latent, "
        f"{numbers.figure(mean[best]['accuracy'])} at {best}, {numbers.figure(mean['dense']['accuracy'])} "
        f"dense · {estimates.duration(probed['seconds'])}"
    )
    st.altair_chart(charts.probing_chart(found), width="stretch")
    st.dataframe(
        evals.probing.table(found),
        hide_index=True,
        key="sae_probing_table",
        column_config={"task": st.column_config.TextColumn(width="large")},
    )

absorbed = section("absorption", "Absorption: does a word's latent swallow its first letter?")
if absorbed is not None:
    found = absorbed["figures"]
    a, b, c = st.columns(3)
    a.metric(
        "Absorption fraction",
        numbers.figure(found["mean_absorption_fraction"]),
        help="share of the letter probe's projection carried by other latents where the letter's own fall short, "
        f"mean over {len(found['letters'])} letters (0 is best); std "
        f"{numbers.figure(found['std_absorption_fraction'])}",
    )
    b.metric(
        "Full absorption",
        numbers.figure(found["mean_full_absorption_rate"]),
        help="share of words whose letter latents stay silent while one other latent carries the letter",
    )
    c.metric(
        "Main latents per letter", numbers.figure(found["mean_main_latents"]), help="more than 1: the letter is split"
    )
    st.altair_chart(charts.absorption_chart(found["letters"]), width="stretch")
    st.caption(
        f"{numbers.count(found['words'])} of the LM's whole-word tokens after a few in-context examples, "
        f"{numbers.count(found['test_words'])} held out · {estimates.duration(absorbed['seconds'])}"
    )
    if found["absorbed_words"]:
        st.dataframe(pd.DataFrame(found["absorbed_words"]), hide_index=True, key="sae_absorbed_words", height=200)

scored = section("labels", "Feature labels, scored")
if scored is not None:
    found = scored["figures"]
    a, b, c = st.columns(3)
    a.metric(
        "Mean label score",
        numbers.figure(found["mean_score"]),
        help="AUROC of MiniLM similarity between a label and texts its feature fires on against texts it does not "
        "(delphi's embedding scorer); 0.5 is chance",
    )
    b.metric(f"Labels scoring ≥ {found['good_at']}", numbers.share(found["good_share"], 0))
    c.metric(
        "Scored",
        f"{numbers.count(found['scored'])} of {numbers.count(found['labelled'])}",
        help="labelled features with two or more "
        "interval examples (texts outside the top ones the label was made from)",
    )
    st.altair_chart(charts.label_score_histogram(workspace.feature_summaries(model_id)["label_score"]), width="stretch")
    st.page_link(
        webapp.SAE_FEATURES_PAGE,
        label="Browse the features with their label scores (sort by the column)",
        icon=":material/hub:",
        query_params={"model": model_id},
    )

explained = section("explanations", "LLM explanations, scored")
if explained is not None:
    found = explained["figures"]
    st.caption(
        f"{found['explainer']} explained {found['explained']} of {found['features']} features (a seeded sample) from "
        f"their top examples; each explanation and each top-words label was then scored on the same "
        f"{found['per_side']} + {found['per_side']} held-out windows: detection (does the text fit?), fuzzing (do the "
        "marked tokens fit?), balanced accuracy and AUROC, and the embedding scorer; 0.5 is chance · "
        f"{numbers.count(explained['tokens'])} prompts · {estimates.duration(explained['seconds'])}"
    )
    st.dataframe(evals.explanations.summary_table(found), hide_index=True, key="sae_explanation_summary")
    st.dataframe(evals.explanations.explained_features(workspace, model_id), hide_index=True, key="sae_explained")

st.subheader("L0 against FVU: every SAE on these activations")
frontier = evals.frontier(workspace, model_id)
if frontier.empty:
    st.caption("No L0 or FVU for this SAE yet (an imported one has none until its core evaluation runs).")
elif len(frontier) < 2:
    st.caption(
        "Only this SAE reads this LM, layer and site. Train others (another k, width or architecture) on the Train "
        "page to see the trade-off between sparsity and reconstruction."
    )
if not frontier.empty:
    st.altair_chart(charts.frontier_chart(frontier, model_id), width="stretch")
st.page_link(
    webapp.SAE_COMPARE_PAGE,
    label="Compare this SAE's features with another's",
    icon=":material/compare_arrows:",
    query_params={"model": model_id},
)
