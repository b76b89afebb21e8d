"""Latent Map: a 2-D map of an encoding; hover, search, select, neighbours, place your own text."""

import pandas as pd
import streamlit as st

from latentviz import (
    charts,
    codebook,
    corpus,
    estimates,
    jobs,
    map_widget,
    numbers,
    pipeline,
    steps,
    webapp,
)
from latentviz.errors import LatentvizError
from latentviz.settings import PLACE_MAX_TEXTS

workspace = webapp.store()
query = st.query_params
SIMILARITY = {
    "similarity": st.column_config.ProgressColumn("cosine", min_value=0.0, max_value=1.0, format="%.3f", width="small")
}
TEXT = {"text": st.column_config.TextColumn("text", width="large")}


@st.cache_data(max_entries=16, show_spinner="Clustering and naming the clusters…")
def load_clusters(db: str, projection_id: int, method: str, k: int) -> pd.Series:
    return pipeline.clusters(workspace, projection_id, method, k)  # a map never changes: safe to cache


st.title("Latent Map")
status = st.container()  # the jobs' status, drawn after the map: its store reads would hold the map back

maps = workspace.projections()
if maps.empty:
    with status:
        webapp.job_status(workspace)
    if not jobs.active(workspace).empty:  # queued or running: the map is on its way
        st.info(
            "**Building the map.** It appears here by itself when the work above is done.",
            icon=":material/hourglass_top:",
        )
        st.stop()
    if workspace.datasets().empty:
        st.info(
            "**No data yet.** Build the default map — BBC News sentences encoded by MiniLM, laid out with UMAP "
            f"({estimates.about(estimates.FIRST_MAP_S)} on a 2-core laptop) — or add your own text on the Data page.",
            icon=":material/scatter_plot:",
        )
    else:
        st.info(
            "**No map yet.** Encode a dataset and compute its map on the Data page.", icon=":material/scatter_plot:"
        )
    if not workspace.read_only:
        if st.button("Build the BBC News map", type="primary", key="build_default"):
            webapp.start_default_map(workspace)
            st.rerun()
    st.page_link("views/data.py", label="Add your own text", icon=":material/dataset:")
    st.stop()

# -- which map, coloured how ---------------------------------------------------------------------
labels = {
    int(r.id): f"{r.dataset} · {r.backbone} layer {r.layer} · {r.method.upper()}  (#{r.id})" for r in maps.itertuples()
}
wanted = webapp.from_url("map", webapp.newest_map(maps), labels, int)
pick, colour, find = st.columns([3, 2, 3])
projection_id = pick.selectbox("Map", list(labels), index=list(labels).index(wanted), format_func=labels.get, key="map")
query["map"] = str(projection_id)
dataset = maps.set_index("id").loc[projection_id, "dataset"]
points = webapp.map_points(workspace, projection_id)

code_models = {f"code of VQ model #{i}": i for i in codebook.sentence_code_models(workspace, dataset)}
colour_options = webapp.map_colourings(points, code_models)
color_by = colour.selectbox(
    "Colour by",
    colour_options,
    key="color",
    index=colour_options.index(webapp.from_url("color", colour_options[0], colour_options)),
)
query["color"] = color_by
k = 0
if color_by in code_models:  # the first code of each text, the 15 most used codes each in a colour
    points = points.assign(cluster=points["id"].map(codebook.code_colours(workspace, code_models[color_by])))
elif color_by.endswith("cluster"):
    method = color_by.split()[0]
    if method == "k-means":  # beside the colouring it changes, and in the URL with it
        k = colour.slider("k-means clusters", 2, 30, webapp.from_url("k", steps.CLUSTER.k, range(2, 31), int), key="k")
        query["k"] = str(k)
    points = points.assign(cluster=points["id"].map(load_clusters(str(workspace.path), projection_id, method, k)))
search = find.text_input("Search texts", value=query.get("q", ""), placeholder="e.g. election", key="q")
webapp.remember_text("q", search)
matches = workspace.search_texts(dataset, search) if search.strip() else None

if matches is not None:
    found = f"{numbers.count(len(matches))} texts contain" if len(matches) != 1 else "1 text contains"
    find.caption(f"{found} “{search}”" + (": listed below the map" if len(matches) else ""))
encoding_id = int(maps.set_index("id").loc[projection_id, "encoding_id"])


def pick_from(rows: pd.DataFrame, key: str) -> None:
    """A table of texts; picking a row shows its neighbours."""
    table = st.dataframe(
        rows[["id", "text", "label"]],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        column_config=TEXT,
    )
    picked = webapp.new_pick(f"last_{key}", [int(rows.iloc[i]["id"]) for i in table.selection.rows])
    if picked is not None:
        st.session_state["focus"] = picked
        st.rerun()


def show_neighbours(focus: int, neighbours: pd.DataFrame) -> None:
    st.subheader("Nearest neighbours (cosine)")
    st.text(f"★ {points.set_index('id').loc[focus, 'text']}")  # st.text: dataset text is untrusted, never markdown
    st.dataframe(
        neighbours[["similarity", "label", "text"]], hide_index=True, key="neighbours", column_config=SIMILARITY | TEXT
    )
    if st.button("Clear", key="clear_focus"):
        st.session_state.pop("focus", None)
        query.pop("text", None)
        st.rerun()


def show_selection(chosen_rows: pd.DataFrame | None) -> None:
    if chosen_rows is None:
        st.info("Drag a box (or a lasso) on the map: the texts inside are counted and listed here.")
        return
    st.markdown(f"**{numbers.count(len(chosen_rows))} texts selected**")
    if chosen_rows["label"].notna().any():
        st.bar_chart(chosen_rows["label"].fillna(charts.NO_LABEL).value_counts(), horizontal=True, height=180)
    pick_from(chosen_rows, "selected_table")
    download, save = st.columns(2)
    download.download_button(
        "Download as CSV",
        chosen_rows[["id", "text", "label"]].to_csv(index=False).encode(),
        file_name=f"{dataset}-selection.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    if workspace.read_only:
        return
    name = save.text_input("Save as a dataset named", f"{dataset}-selection", key="selection_name")
    if save.button("Save as a dataset", key="save_selection", icon=":material/save:"):
        try:
            count = pipeline.save_selection(workspace, dataset, chosen_rows["id"], name)
            st.success(f"Saved {numbers.count(count)} texts as dataset “{name.strip()}”: encode it on the Data page.")
        except LatentvizError as error:
            st.error(str(error), icon=":material/error:")


def place_your_text(placed: pipeline.Placed | None) -> None:
    typed = st.text_area("Type sentences, one per line", key="typed", placeholder="The striker scored twice.")
    upload = st.file_uploader("…or upload a file", type=[f.lstrip(".") for f in corpus.FORMATS], key="place_upload")
    if st.button("Place on the map", type="primary", key="place"):
        try:
            texts = [line for line in typed.splitlines() if line.strip()]
            if upload is not None:
                # read no further than needed: a file is placed up to the limit, never held whole
                read = corpus.parse_upload(upload.getvalue(), upload.name, max_rows=PLACE_MAX_TEXTS + 1)[0]
                texts += read["text"].tolist()
            if len(texts) > PLACE_MAX_TEXTS:
                st.session_state["place_note"] = (
                    f"Placed the first {PLACE_MAX_TEXTS} texts; add a whole file as a dataset on the Data page."
                )
            with st.spinner("Encoding and placing…"):
                index = webapp.neighbour_index(workspace, encoding_id)  # the vectors the page holds
                new = pipeline.place(workspace, projection_id, texts[:PLACE_MAX_TEXTS], index=index)
                st.session_state.setdefault("placed", {})[projection_id] = new
            st.rerun()
        except LatentvizError as error:
            st.error(str(error), icon=":material/error:")
    if placed is not None:
        if "place_note" in st.session_state:
            st.caption(st.session_state.pop("place_note"))
        for number, (text, near) in enumerate(zip(placed.points["text"], placed.neighbours, strict=True), start=1):
            st.text(f"★{number}  {text}")  # numbered as its star on the map
            st.dataframe(near[["similarity", "label", "text"]], hide_index=True, column_config=SIMILARITY | TEXT)


@st.fragment
def explore() -> None:
    """The map and what is chosen on it. A fragment: a click on the map reruns only this part of
    the page, which keeps click → neighbours under a second at 50,000 points."""
    colour_column = webapp.colour_column(color_by)
    points_file = webapp.published_map(workspace, projection_id, points, color_by, k)
    # What the visitor did on the map last, read before drawing, so a click shows its neighbours in
    # this same run.
    map_events = map_widget.events("map_chart", points_file)
    if map_events.clicked is not None:
        st.session_state["focus"] = map_events.clicked
    selected = map_events.selected
    focus = st.session_state.get("focus", webapp.from_url("text", None, cast=int))
    focus = focus if focus is not None and (points["id"].to_numpy() == focus).any() else None  # no set of every id
    if focus is not None:
        query["text"] = str(focus)
    neighbours = None if focus is None else webapp.neighbour_index(workspace, encoding_id).neighbours(points, focus)
    placed = st.session_state.get("placed", {}).get(projection_id)

    # the legend is the map's filter: the colours turned off there leave the search and the selection too
    shown = points
    if map_events.hidden and colour_column is not None:
        shown = points[~points[colour_column].fillna(charts.NO_LABEL).astype(str).isin(map_events.hidden)]
    found = None if matches is None else matches[matches["id"].isin(shown["id"])]

    # -- the map, at the page's full width, then what is chosen on it ------------------------------
    map_widget.draw(
        points_file,
        overlays=charts.map_overlays(
            points,
            highlight_ids=None if found is None else found["id"],
            focus_id=focus,
            neighbour_ids=None if neighbours is None else neighbours["id"],
            placed=None if placed is None else placed.points,
        ),
        dim=found is not None,
        height=720,
        key="map_chart",
    )
    if len(shown) < len(points):
        turned_off = numbers.count(len(map_events.hidden), "colour")
        st.caption(  # counted, not named: the names may be an upload's labels, and a caption is markdown
            f"Showing {numbers.count(len(shown))} of {numbers.count(len(points))} texts: {turned_off} turned off in "
            "the legend, left out of the search and the selection too. Click a name there to bring it back."
        )
    st.caption(
        f"{numbers.count(len(points))} texts. Hover to read; click a point for its neighbours; drag a box to "
        "select (lasso and pan "
        "are in the bar above the map); scroll to zoom, double-click to zoom back out; click a colour in the legend "
        "to hide it. Area names, density and full screen: the buttons at the map's lower right."
    )
    if neighbours is not None:  # right under the map, not in a tab: a click shows its answer where one looks
        show_neighbours(focus, neighbours)

    chosen_rows = points[points["id"].isin(selected)] if len(selected) > 1 else None
    # fixed labels and a key: a tab whose label or place changed (a count, the neighbours above
    # appearing or going) was a new tab set to Streamlit, which reopened the first tab on every click;
    # "rerun" tells the server which tab is open, so a rerun racing a tab click cannot reopen the first
    tab_matches, tab_selection, tab_yours = st.tabs(
        ["Search matches", "Selection", "Your text"], key="map_tabs", on_change="rerun"
    )
    with tab_matches:  # the count is in the caption under the search box
        if found is None or found.empty:
            st.info(
                "Type a word in *Search texts* above: the texts containing it are listed here and marked on the map."
                if found is None or len(matches) == len(found)
                else "The texts that match are all in colours turned off in the legend."
            )
        else:
            pick_from(found, "matches_table")
    with tab_selection:
        show_selection(chosen_rows)
    with tab_yours:
        place_your_text(placed)


explore()
with status:
    webapp.job_status(workspace)
# loaded after the map is drawn (unless `serve` did, once no page ran): the first click is as quick
webapp.neighbour_index(workspace, encoding_id)
