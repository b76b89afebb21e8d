"""latentviz app: `latentviz serve` (or `streamlit run app.py`) opens this."""

import streamlit as st

from latentviz import webapp
from latentviz.errors import LatentvizError

st.set_page_config(page_title="latentviz", page_icon=webapp.favicon(), layout="wide")

workspace = webapp.store()
webapp.guard_host(workspace)
webapp.bootstrap(workspace)

# The page scripts live in views/, not pages/: Streamlit would treat a pages/ folder as a legacy
# multipage app and could run a deep-linked page without this file.
page = st.navigation(
    {
        "Explore": [
            st.Page("views/map.py", title="Latent Map", icon=":material/scatter_plot:", default=True),  # served at /
            st.Page("views/codebook.py", title="Codebook", icon=":material/grid_view:", url_path="codebook"),
            st.Page("views/data.py", title="Data", icon=":material/dataset:", url_path="data"),
        ],
        "Text VAE": [
            st.Page("views/vae_train.py", title="Train", icon=":material/model_training:", url_path="vae-train"),
            st.Page(
                "views/vae_diagnostics.py",
                title="Diagnostics",
                icon=":material/monitor_heart:",
                url_path="vae-diagnostics",
            ),
            st.Page("views/vae_traverse.py", title="Traverse", icon=":material/linear_scale:", url_path="vae-traverse"),
            st.Page(
                "views/vae_interpolate.py", title="Interpolate", icon=":material/timeline:", url_path="vae-interpolate"
            ),
            st.Page(
                "views/vae_arithmetic.py", title="Arithmetic", icon=":material/calculate:", url_path="vae-arithmetic"
            ),
        ],
        "Sparse autoencoders": [
            st.Page("views/sae_train.py", title="Train", icon=":material/model_training:", url_path="sae-train"),
            st.Page("views/sae_features.py", title="Features", icon=":material/hub:", url_path="sae-features"),
            st.Page("views/sae_text.py", title="Text & steering", icon=":material/edit_note:", url_path="sae-text"),
            st.Page("views/sae_evaluate.py", title="Evaluate", icon=":material/rule:", url_path="sae-evaluate"),
            st.Page("views/sae_compare.py", title="Compare", icon=":material/compare_arrows:", url_path="sae-compare"),
        ],
    }
)

with st.sidebar:
    st.caption(f"Workspace `{workspace.path.name}`" + (" · read-only" if workspace.read_only else ""))

with webapp.page_run():
    try:
        page.run()
    except LatentvizError as error:  # what a user can fix (a missing checkpoint, a bad file): one line, no traceback
        st.error(str(error).splitlines()[0], icon=":material/error:")
