"""The Latent Map in a page: our own canvas renderer (point_map.js) that keeps its points between reruns.

`st.plotly_chart` sends and redraws the whole figure on every rerun, so at 50,000 points a click
took 6 s to show its neighbours. This component (map_widget.html: Streamlit's component protocol
by hand, no build step) fetches the points once per colouring, and after that receives only the
overlays. The points are a file beside the component's page (`publish`): positions and ids as
binary arrays, built once per map and colouring and shared by every session, fetched over plain
HTTP; hover texts are files of a thousand texts each, fetched when a point under them is hovered.
So a million points never travel as JSON through a session's websocket. The component's folder
(component_files) holds the page and point_map.js, so the browser fetches nothing from elsewhere.
The points come by colour (charts.map_colouring); the overlays and the density layer are Plotly-style
traces (charts.map_overlays, charts.map_density), of which point_map.js reads the markers and lines.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import streamlit as st
import streamlit.components.v1 as components

from latentviz import charts, component_files
from latentviz.constants import POINT_MAP_FILE

FOLDER = component_files.folder("map_widget.html", {POINT_MAP_FILE: resources.files("latentviz") / POINT_MAP_FILE})


@functools.cache
def _component():
    """Declared at the first page run that draws it, not on import: `serve`'s warm-up imports this module
    before the server's runtime exists, which would then not know it (its frame a 404)."""
    return components.declare_component("latent_map", path=str(FOLDER))


TEXTS_PER_FILE = 1000


def publish(
    points_key: str, points: pd.DataFrame, colour: str | None, texts_key: str, *, labels: list[dict], density_json: str
) -> str:
    """Puts a map's points (id, x, y, text and the `colour` column), drawn by colour (charts.map_colouring),
    with its area names (projection.map_labels) and density layer (charts.map_density, as JSON) where
    the browser side fetches them; returns their path, relative to the page. One gzipped file: a
    4-byte length, a JSON head ({texts, texts_per_file, labels, density, traces: [{name, color,
    opacity, size, count}]}) padded to 4 bytes, then x and y (float32) and ids (int32), trace by
    trace: typed arrays, read by the browser as they are. The hover texts, once per `texts_key`, are
    written meanwhile in a thread (`published` waits for them): the points need not wait."""
    own = component_files.own_folder(FOLDER)
    name = hashlib.sha256(points_key.encode()).hexdigest()[:16]
    folder = own / f"texts-{hashlib.sha256(texts_key.encode()).hexdigest()[:16]}"
    with _WRITERS_LOCK:
        writing = _WRITERS.get(folder.name)
        if not folder.exists() and not (writing and writing.is_alive()):
            writer = threading.Thread(target=_write_texts, args=(folder, points[["id", "text"]]), daemon=True)
            _WRITERS[folder.name] = writer
            writer.start()
    traces, order = charts.map_colouring(points, colour)
    head = json.dumps({"texts": folder.name, "texts_per_file": TEXTS_PER_FILE, "labels": labels, "traces": traces})[:-1]
    head = f'{head}, "density": {density_json}}}'.encode()  # the density's JSON joined as is
    head += b" " * (-len(head) % 4)  # the arrays start on a multiple of 4 bytes
    body = b"".join(
        [
            np.uint32(len(head)).tobytes(),
            head,
            points["x"].to_numpy("<f4")[order].tobytes(),
            points["y"].to_numpy("<f4")[order].tobytes(),
            points["id"].to_numpy("<i4")[order].tobytes(),
        ]
    )
    # compressed here once: the server would gzip it again for every visitor (its level 5: seconds a
    # million points); served as application/gzip, which it leaves alone, and unpacked by the browser
    component_files.write(own / f"{name}.bin.gz", gzip.compress(body, compresslevel=1, mtime=0))
    return component_files.relative(FOLDER, own / f"{name}.bin.gz")


_WRITERS: dict[str, threading.Thread] = {}  # hover-text folders being written, by name
_WRITERS_LOCK = threading.Lock()


def _write_texts(folder: Path, texts: pd.DataFrame) -> None:
    """Texts (id, text) as files of TEXTS_PER_FILE ids each, plain (shown as text, never as HTML) and
    shortened as hover labels are; all at once: a browser asking meanwhile gets 404 and asks again."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent))
    chunk = texts["id"].to_numpy() // TEXTS_PER_FILE
    order = np.argsort(chunk, kind="stable")  # each file's ids together, in plain lists (a groupby: 2× slower)
    ids, sorted_text = texts["id"].to_numpy()[order].tolist(), texts["text"].astype(str).to_numpy()[order]
    starts = np.flatnonzero(np.diff(chunk[order], prepend=-1)).tolist()  # where each file's ids begin
    for start, end in itertools.pairwise([*starts, len(ids)]):
        lines = dict(zip(ids[start:end], map(charts.shortened, sorted_text[start:end]), strict=True))
        (staging / f"{ids[start] // TEXTS_PER_FILE}.json").write_text(json.dumps(lines))
    try:
        os.replace(staging, folder)
    except OSError:  # published meanwhile by another process's session
        shutil.rmtree(staging, ignore_errors=True)


def is_published(path: str) -> bool:
    """Whether the file behind a path `publish` returned is still there (a stopped server's folder,
    a week old, is cleared by the next one)."""
    return (FOLDER / path).exists()


def published(path: str) -> dict:
    """What the browser side reads from a path `publish` returned, its hover texts written: the head
    ({texts, texts_per_file, labels, density, traces}) with x, y and id arrays."""
    body = gzip.decompress((FOLDER / path).read_bytes())
    length = int(np.frombuffer(body[:4], "<u4")[0])
    head = json.loads(body[4 : 4 + length])
    with _WRITERS_LOCK:
        writer = _WRITERS.get(head["texts"])
    if writer is not None:
        writer.join()
    arrays = np.frombuffer(body[4 + length :], "<f4")
    n = len(arrays) // 3
    return head | {"x": arrays[:n], "y": arrays[n : 2 * n], "id": np.frombuffer(body[4 + length :], "<i4")[2 * n :]}


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
    _component()(
        points=points,
        overlays=json.dumps([trace.to_plotly_json() for trace in overlays], cls=plotly.utils.PlotlyJSONEncoder),
        dim=dim,
        dim_factor=charts.DIMMED,
        height=height,
        key=key,
        default=None,
    )
