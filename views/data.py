"""Data: the workspace's datasets; add BBC News or an uploaded file; encode and map a dataset."""

import streamlit as st

from latentviz import backbones, corpus, jobs, pipeline, projection, settings, steps, webapp
from latentviz.errors import LatentvizError

workspace = webapp.store()

st.title("Data")
webapp.job_status(workspace)
if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"), icon=":material/check_circle:")

datasets = workspace.datasets()
if datasets.empty:
    st.info(
        "No datasets yet: add the built-in BBC News corpus or upload your own text below.", icon=":material/dataset:"
    )
else:
    st.caption("Datasets")
    st.dataframe(
        datasets,
        hide_index=True,
        key="datasets_table",
        column_config={"created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )
    encodings = workspace.encodings()
    if not encodings.empty:
        st.caption("Encodings")
        st.dataframe(encodings, hide_index=True, key="encodings_table")

if workspace.read_only:
    st.caption("This workspace is open read-only: it can be browsed, not changed.")
    st.stop()

if not datasets.empty:
    st.header("Encode and map")
    left, middle, right, last = st.columns(4)
    if "encode_next" in st.session_state:  # a dataset just imported (set before the widget is drawn)
        st.session_state["encode_dataset"] = st.session_state.pop("encode_next")
    dataset = left.selectbox("Dataset", datasets["name"].tolist(), key="encode_dataset")
    choices = [steps.ENCODE.backbone, backbones.SMOLLM2, "other (Hugging Face id or folder)"]
    backbone = middle.selectbox(
        "Backbone",
        choices,
        key="backbone",
        help="minilm: sentence encoder (384-d). smollm2: causal LM (576-d, first use converts it: ~30 s).",
    )
    if backbone.startswith("other"):
        backbone = middle.text_input("Model id or local folder", key="custom_backbone").strip()
    layer = right.number_input(
        "Layer (0 = default)",
        0,
        64,
        0,
        key="layer",
        help="Which block's output to mean-pool. Default: the last for encoders, the middle for causal LMs.",
    )
    method = last.selectbox(
        "Map", projection.METHODS, index=projection.METHODS.index(steps.PROJECT.method), key="method"
    )
    if st.button("Encode and map", type="primary", key="encode", disabled=not backbone):
        jobs.submit(
            workspace,
            "encode and map",
            {"dataset": dataset, "backbone": backbone, "layer": int(layer), "method": method},
        )
        st.rerun()
    if not workspace.projections().empty:
        st.page_link("views/map.py", label="Open the Latent Map", icon=":material/scatter_plot:")

st.header("Add a dataset")
builtin, upload_tab = st.tabs(["Built-in: BBC News", "Upload a file"])
with builtin:
    st.write("Sentences from 2,225 BBC News articles in five topics, labelled by topic; a balanced random subset.")
    limit = st.number_input("Sentences", 100, 40_000, settings.DEFAULT_LIMIT, step=500, key="bbc_limit")
    name = st.text_input("Dataset name", settings.BUILTIN_DATASET, key="bbc_name")
    if st.button("Add BBC News", key="add_bbc"):
        try:
            result = pipeline.ingest(workspace, settings.BUILTIN_DATASET, name=name, limit=int(limit))
            st.session_state["flash"] = f"Added {result.dataset!r}: {result.report.summary()}: now encode and map it."
            st.session_state["encode_next"] = result.dataset
            st.rerun()
        except LatentvizError as error:
            st.error(str(error), icon=":material/error:")
with upload_tab:
    st.write("`.txt` (one text per line), `.csv` / `.tsv` with a header, `.jsonl` (one object per line) or `.parquet`.")
    upload = st.file_uploader("File", type=[f.lstrip(".") for f in corpus.FORMATS], key="upload")
    if upload is not None:
        try:
            first_rows = corpus.preview(upload.getvalue(), upload.name)
        except corpus.CorpusError as error:
            st.error(str(error), icon=":material/error:")
            st.stop()
        st.caption("The file's first rows, as they will be read")
        st.dataframe(first_rows, hide_index=True, key="upload_preview")
        columns = [] if upload.name.lower().endswith(".txt") else list(first_rows.columns)
        text_column = label_column = None
        if columns:
            guessed_text, guessed_label = corpus.guess_columns(columns)
            text_column = st.selectbox("Text column", columns, index=columns.index(guessed_text), key="text_column")
            others = ["(none)"] + [c for c in columns if c != text_column]
            label_column = st.selectbox(
                "Label column (optional)",
                others,
                index=others.index(guessed_label) if guessed_label in others else 0,
                key="label_column",
            )
            label_column = None if label_column == "(none)" else label_column
        upload_name = st.text_input("Dataset name", upload.name.rsplit(".", 1)[0], key="upload_name")
        if st.button("Import", type="primary", key="import"):
            try:
                result = pipeline.ingest(
                    workspace,
                    upload.name,
                    name=upload_name,
                    data=upload.getvalue(),
                    text_column=text_column,
                    label_column=label_column,
                )
                st.session_state["flash"] = (
                    f"Added {result.dataset!r}: {result.report.summary()}: now encode and map it."
                )
                st.session_state["encode_next"] = result.dataset  # the Encode form opens on it
                st.rerun()
            except LatentvizError as error:
                st.error(str(error), icon=":material/error:")

if datasets.empty:
    st.stop()
with st.expander("Delete a dataset"):
    doomed = st.selectbox("Dataset to delete", datasets["name"].tolist(), key="delete_dataset")
    sure = st.checkbox(f"Yes, delete {doomed!r}: this cannot be undone", key="delete_sure")
    if st.button(f"Delete {doomed!r} with its encodings and maps", key="delete", disabled=not sure):
        workspace.delete_dataset(doomed)
        st.rerun()
