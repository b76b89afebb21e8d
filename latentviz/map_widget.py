"""The Latent Map in a page: a Plotly WebGL scatter that keeps its points between reruns.

`st.plotly_chart` sends and redraws the whole figure on every rerun, so at 50,000 points a click
took 6 s to show its neighbours. This component (map_widget.html: Streamlit's component protocol
by hand, no build step) receives the points once per colouring, and after that only the overlays.
Its two files are put together in a cache folder on first use: the page, and plotly.js from
plotly's own Python package, so the browser fetches nothing from elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import plotly
import streamlit as st
import streamlit.components.v1 as components

from latentviz import charts, settings
from latentviz.constants import PLOTLY_FILE, SITE_INDEX


def _folder() -> Path:
    """index.html and plotly.min.js side by side, as Streamlit serves a component's folder."""
    page = resources.files("latentviz").joinpath("map_widget.html").read_bytes()
    name = "map-widget-" + hashlib.sha256(page + plotly.__version__.encode()).hexdigest()[:12]
    for parent in (settings.user_cache(), Path(tempfile.gettempdir())):
        folder = parent / name
        if (folder / SITE_INDEX).exists():
            return folder
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=name + "."))
            shutil.copyfile(charts.PLOTLY_JS, staging / PLOTLY_FILE)
            (staging / SITE_INDEX).write_bytes(page)
            try:
                os.replace(staging, folder)  # all at once: another process never sees half a folder
            except OSError:  # another process got there first
                shutil.rmtree(staging, ignore_errors=True)
            return folder
        except OSError:
            continue  # a read-only home (a container): the temporary folder then
    raise OSError("no writable folder for the map's browser files")


_component = components.declare_component("latent_map", path=str(_folder()))


@dataclass
class MapEvents:
    clicked: int | None  # the text clicked since the last run, if one was
    selected: list[int]  # the texts inside the box or lasso selection


def events(key: str) -> MapEvents:
    """What the visitor did on the map drawn under `key`, read before drawing it again."""
    value = st.session_state.get(key) or {}
    click = (value.get("frame"), value.get("click_seq"))
    seen = st.session_state.get(f"{key}_seen_click")
    st.session_state[f"{key}_seen_click"] = click
    clicked = value.get("click") if value.get("click_seq") and click != seen else None
    return MapEvents(None if clicked is None else int(clicked), [int(i) for i in value.get("selected") or []])


def draw(base: Callable[[], str], base_key: str, overlays: list, *, dim: bool, height: int, key: str) -> None:
    """The map: `base()` (charts.map_base's figure as JSON), asked for and sent only when the browser
    lacks `base_key`, and `overlays` (charts.map_overlays) on every run; `dim` fades the points under a
    search."""
    value = st.session_state.get(key) or {}
    _component(
        base=None if value.get("have") == base_key else base(),
        base_key=base_key,
        overlays=json.dumps([trace.to_plotly_json() for trace in overlays], cls=plotly.utils.PlotlyJSONEncoder),
        dim=dim,
        dim_factor=charts.DIMMED,
        height=height,
        key=key,
        default=None,
    )
