"""The Latent Map in a page: a Plotly WebGL scatter that keeps its points between reruns.

`st.plotly_chart` sends and redraws the whole figure on every rerun, so at 50,000 points a click
took 6 s to show its neighbours. This component (map_widget.html: Streamlit's component protocol
by hand, no build step) fetches the points once per colouring, and after that receives only the
overlays. The points are a file beside the component's page (`publish`): positions and ids as
binary arrays, built once per map and colouring and shared by every session, fetched over plain
HTTP; hover texts are files of a thousand texts each, fetched when a point under them is hovered.
So a million points never travel as JSON through a session's websocket. The component's folder
(component_files) holds the page and plotly.js from plotly's own Python package (compressed once,
unpacked by the browser), so the browser fetches nothing from elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import streamlit as st
import streamlit.components.v1 as components

from latentviz import charts, component_files
from latentviz.constants import AREA_NAMES_FILE, PLOTLY_FILE

FOLDER = component_files.folder(
    "map_widget.html",
    {AREA_NAMES_FILE: resources.files("latentviz") / AREA_NAMES_FILE},
    gzipped={f"{PLOTLY_FILE}.gz": charts.PLOTLY_JS},
)
_component = components.declare_component("latent_map", path=str(FOLDER))
TEXTS_PER_FILE = 1000


def publish(
    points_key: str, figure_json: str, texts_key: str, texts: pd.DataFrame, *, labels: list[dict], density_json: str
) -> str:
    """Puts a map's points (charts.map_base's figure, as JSON) with its area names (projection.map_labels)
    and density layer (charts.map_density, as JSON) and, once per `texts_key`, its texts (id, text)
    where the browser side fetches them; returns the points' path, relative to the page.
    Texts are plain (shown as text, never as HTML), shortened as hover labels are, a file per
    TEXTS_PER_FILE ids."""
    own = component_files.own_folder(FOLDER)
    name = hashlib.sha256(points_key.encode()).hexdigest()[:16]
    folder = own / f"texts-{hashlib.sha256(texts_key.encode()).hexdigest()[:16]}"
    if not folder.exists():
        staging = Path(tempfile.mkdtemp(dir=own))
        chunk = texts["id"].to_numpy() // TEXTS_PER_FILE
        order = np.argsort(chunk, kind="stable")  # each file's ids together, in plain lists (a groupby: 2× slower)
        ids, sorted_text = texts["id"].to_numpy()[order].tolist(), texts["text"].astype(str).to_numpy()[order]
        starts = np.flatnonzero(np.diff(chunk[order], prepend=-1)).tolist()  # where each file's ids begin
        for start, end in itertools.pairwise([*starts, len(ids)]):
            lines = dict(zip(ids[start:end], map(charts.shortened, sorted_text[start:end]), strict=True))
            (staging / f"{ids[start] // TEXTS_PER_FILE}.json").write_text(json.dumps(lines))
        try:
            os.replace(staging, folder)
        except OSError:  # published meanwhile by another session of this process
            shutil.rmtree(staging, ignore_errors=True)
    head = json.dumps({"texts": folder.name, "texts_per_file": TEXTS_PER_FILE, "labels": labels})[:-1]
    points = f'{head}, "density": {density_json}, "figure": {figure_json}}}'.encode()  # figures' JSON joined as is
    # compressed here once: the server would gzip it again for every visitor (its level 5: seconds a
    # million points); served as application/gzip, which it leaves alone, and unpacked by the browser
    component_files.write(own / f"{name}.json.gz", gzip.compress(points, compresslevel=1, mtime=0))
    return component_files.relative(FOLDER, own / f"{name}.json.gz")


def is_published(path: str) -> bool:
    """Whether the file behind a path `publish` returned is still there (a stopped server's folder,
    a week old, is cleared by the next one)."""
    return (FOLDER / path).exists()


def published(path: str) -> dict:
    """What the browser side reads from a path `publish` returned: {texts, texts_per_file, labels,
    density, figure}."""
    return json.loads(gzip.decompress((FOLDER / path).read_bytes()))


@dataclass
class MapEvents:
    clicked: int | None  # the text clicked since the last run, if one was
    selected: list[int]  # the texts inside the box or lasso selection
    hidden: set[str]  # the colours turned off in the legend (their names), on the map drawn from `points`


def events(key: str, points: str) -> MapEvents:
    """What the visitor did on the map drawn under `key` from `points` (the path `publish` returned),
    read before drawing it again."""
    value = st.session_state.get(key) or {}
    click = (value.get("frame"), value.get("click_seq"))
    seen = st.session_state.get(f"{key}_seen_click")
    st.session_state[f"{key}_seen_click"] = click
    clicked = value.get("click") if value.get("click_seq") and click != seen else None
    hidden = set(value.get("hidden") or []) if value.get("hidden_in") == points else set()  # not another colouring's
    return MapEvents(None if clicked is None else int(clicked), [int(i) for i in value.get("selected") or []], hidden)


def draw(points: str, overlays: list, *, dim: bool, height: int, key: str) -> None:
    """The map: `points` (the path `publish` returned), fetched by the browser when it changes, and
    `overlays` (charts.map_overlays) on every run; `dim` fades the points under a search."""
    _component(
        points=points,
        overlays=json.dumps([trace.to_plotly_json() for trace in overlays], cls=plotly.utils.PlotlyJSONEncoder),
        dim=dim,
        dim_factor=charts.DIMMED,
        height=height,
        key=key,
        default=None,
    )
