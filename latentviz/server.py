"""`streamlit run`, with a warm-up started in the background as the server starts, so the first
visitor does not wait for it: first the map page's imports (no torch) and its first view (the newest
map's points read and published); then, once no page has run for a moment, that map's vectors (for its
first click) and what the other pages import (torch among them). `latentviz serve` runs this module in
place of `python -m streamlit`."""

import importlib
import threading
import time

from streamlit.web.cli import main

# What the pages other than the map import on their first view (each loads torch: about 1.5 s on 2 cores)
OTHER_PAGES_MODULES = ("backbones", "fit.vq", "fit.vae", "fit.sae", "features.bulk", "features.live", "evals")
# The vectors and those imports wait until the map is prepared and no page has run for this long: a
# first visit made while either was loaded drew 200,000 points in 2.5-3.4 s instead of 1.9-2.4 s
# (bench/map.py), sharing the interpreter and the 2 cores; a browser takes about a second to load the
# page before its first run starts
QUIET_S = 3.0


def _warm_up() -> None:
    from latentviz import charts, codebook, corpus, neighbours, pipeline, webapp  # noqa: F401

    webapp.favicon()
    encoding_id = _unless_it_fails(webapp.prepare_newest_map)
    prepared = time.monotonic()
    while min(time.monotonic() - prepared, webapp.seconds_since_a_page_ran()) < QUIET_S:
        time.sleep(0.25)
    if encoding_id is not None:
        _unless_it_fails(webapp.neighbour_index, webapp.store(), encoding_id)
    for name in OTHER_PAGES_MODULES:
        importlib.import_module(f"latentviz.{name}")


def _unless_it_fails(work, *args):
    """`work(*args)`, or None where it fails (a workspace that cannot be read): the page says why, in one line."""
    try:
        return work(*args)
    except Exception:
        return None


if __name__ == "__main__":
    threading.Thread(target=_warm_up, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
