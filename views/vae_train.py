"""Text VAE · Train: configure and train a sentence VAE, watch its validation curves live, stop and resume."""

from dataclasses import replace

import streamlit as st

from latentviz import charts, estimates, fit, runs, webapp
from latentviz.configs import ANNEALING, VARIANTS

workspace = webapp.store()

st.title("Train a text VAE")
st.caption(
    "Sentence → Gaussian latent z → words (Bowman et al., 2016). The curves below say at once whether the "
    "latent space is alive: active units and mutual information above zero, KL not collapsed to zero."
)
webapp.job_status(workspace)


training_now = webapp.training_panel(workspace, fit.vae.KIND)

# -- configure and start ----------------------------------------------------------------------------
trained = fit.common.models(workspace, fit.vae.KIND)
datasets = workspace.datasets()
if datasets.empty:
    st.info(
        "**No data yet.** Open the Latent Map to build the BBC News map, or add your own text on the Data page.",
        icon=":material/dataset:",
    )
    st.page_link("views/data.py", label="Add data", icon=":material/dataset:")
    st.stop()

if not workspace.read_only and not training_now:
    with st.expander("Train a new VAE", expanded=trained.empty):
        encoded = workspace.encodings()
        encoded = set(encoded[(encoded["backbone"] == "minilm") & encoded["complete"]]["dataset"])
        left, middle, right = st.columns(3)
        variant = left.radio(
            "Model",
            VARIANTS,
            index=VARIANTS.index(runs.VAERun().model.variant),
            key="vae_variant",
            format_func={
                "pretrained-encoder": "MiniLM encoder → GRU decoder (fast, good latents)",
                "rnn": "GRU encoder → GRU decoder (Bowman et al.)",
                "pretrained-decoder": "MiniLM encoder → frozen SmolLM2 decoder (Optimus-style; slow on CPU)",
            }.get,
        )
        names = datasets["name"].tolist() if variant == "rnn" else [d for d in datasets["name"] if d in encoded]
        dataset = middle.selectbox("Dataset", names, key=f"vae_dataset_{variant}")
        if not names:
            middle.info("Encode a dataset with MiniLM first (Data page), or choose the GRU encoder.")
        spec = runs.VAE_LM_DECODER if variant == "pretrained-decoder" else runs.VAERun()  # its form defaults
        model, training = spec.model, spec.training
        epochs = right.number_input(
            "Epochs",
            1,
            200,
            spec.epochs,
            key=f"vae_epochs_{variant}",
            help=runs.help_of(spec, "epochs"),
        )
        a, b, c, d = st.columns(4)
        latent_dim = a.select_slider("Latent dimensions", [2, 4, 8, 16, 32, 64], model.latent_dim, key="vae_dim")
        beta = b.number_input("β (KL weight)", 0.0, 10.0, model.beta, step=0.1, key="vae_beta")
        anneal = c.selectbox(
            "KL annealing",
            ANNEALING,
            index=ANNEALING.index(model.anneal),
            key="vae_anneal",
            help="linear: β ramps up from 0; cyclical: ramps repeat (Fu et al., 2019)",
        )
        free_bits = d.number_input(
            "Free bits (nats / dim)",
            0.0,
            5.0,
            model.free_bits,
            step=0.1,
            key="vae_free_bits",
            help="KL below this floor per dimension is not penalised (Kingma et al., 2016)",
        )
        with st.popover("More settings"):
            word_dropout = st.slider(
                "Word dropout",
                0.0,
                0.9,
                model.word_dropout,
                0.05,
                key="vae_word_dropout",
                help="share of the decoder's input words hidden, so it must use z",
            )
            iw_samples = st.number_input(
                "IWAE samples K (1 = ELBO)",
                1,
                20,
                model.iw_samples,
                key="vae_iw",
                help="K > 1 trains on the IWAE bound, where β, its annealing and free bits do not apply",
            )
            hidden = st.select_slider("GRU width", [128, 256, 512, 1024], model.hidden, key="vae_hidden")
            vocab_size = st.number_input("Vocabulary (words)", 500, 30_000, spec.vocab_size, step=500, key="vae_vocab")
            batch_size = st.select_slider("Batch size", [16, 32, 64, 128, 256], training.batch_size, key="vae_batch")
            lr = st.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 6e-3, 1e-2], training.lr, key="vae_lr")
        if st.button("Train", type="primary", key="vae_train", disabled=not dataset):
            run = replace(
                spec,
                dataset=dataset,
                epochs=int(epochs),
                vocab_size=int(vocab_size),
                model=replace(
                    model,
                    variant=variant,
                    latent_dim=latent_dim,
                    beta=beta,
                    anneal=anneal,
                    free_bits=free_bits,
                    word_dropout=word_dropout,
                    iw_samples=int(iw_samples),
                    hidden=hidden,
                ),
                training=replace(training, batch_size=int(batch_size), lr=float(lr)),
            )
            webapp.start_training(workspace, run)

# -- what is trained --------------------------------------------------------------------------------
if trained.empty:
    if not training_now:
        st.info(
            f"No VAE yet: the defaults above train one on BBC News in {estimates.about(estimates.VAE_S)} on a 2-core "
            "laptop CPU.",
            icon=":material/model_training:",
        )
    st.stop()
st.subheader("Trained VAEs (held-out figures)")
st.dataframe(
    fit.vae.summary(workspace),
    hide_index=True,
    key="vae_table",
    column_config={
        "iw_nll": st.column_config.NumberColumn(
            "IW-NLL (K = 100)", format="%.1f", help="importance-weighted NLL per sentence, nats"
        ),
        "perplexity": st.column_config.NumberColumn(
            "PPL",
            format="%.1f",
            help="exp(NLL / tokens), per the unit beside it: word-level and LM-token perplexities do not compare",
        ),
        "perplexity_unit": "per",
        "overfit": "overfit?",
        "held_out_word_accuracy": st.column_config.NumberColumn("held-out words back", format="percent"),
        "kl": st.column_config.NumberColumn("KL", format="%.2f"),
        "active_units": "AU",
        "mutual_information": st.column_config.NumberColumn("MI", format="%.2f"),
        "collapsed": "collapsed?",
        "held_out": "held-out texts",
    },
)
newest = int(trained["id"].max())
st.subheader(f"Run #{newest} during training (held-out)")
st.altair_chart(charts.curves_chart(fit.vae.curves(workspace, newest).assign(model=f"#{newest}"), columns=4))
st.page_link("views/vae_diagnostics.py", label="Open the diagnostics", icon=":material/monitor_heart:")
