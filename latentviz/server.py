"""`streamlit run`, with a warm-up started in the background as the server starts, so the first
visitor does not wait for it: first the map page's imports (no torch) and its first view (the newest
map's points read and published), then, once no page has run for a moment, what the other pages
import (torch among them). `latentviz serve` runs this module in place of `python -m streamlit`."""

import importlib
import threading
import time

from streamlit.web.cli import main

# What the pages other than the map import on their first view (each loads torch: about 1.5 s on 2 cores)
OTHER_PAGES_MODULES = ("backbones", "fit.vq", "fit.vae", "fit.sae", "features.bulk", "features.live", "evals")
# They wait until the map is prepared and no page has run for this long: a first visit made while they
# were imported drew 200,000 points in 2.5-3.4 s instead of 2.0-2.4 s (bench/map.py), the two sharing
# one interpreter; a visitor's browser takes about a second to load the page before its first run
QUIET_S = 3.0


def _warm_up() -> None:
    from latentviz import charts, codebook, corpus, neighbours, pipeline, webapp  # noqa: F401

    webapp.favicon()
    try:
        webapp.prepare_newest_map()
    except Exception:  # a workspace that cannot be read: the page says why, in one line
        pass
    prepared = time.monotonic()
    while min(time.monotonic() - prepared, webapp.seconds_since_a_page_ran()) < QUIET_S:
        time.sleep(0.25)
    for name in OTHER_PAGES_MODULES:
        importlib.import_module(f"latentviz.{name}")


if __name__ == "__main__":
    threading.Thread(target=_warm_up, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
