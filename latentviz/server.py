"""`streamlit run`, with a warm-up started in the background as the server starts, so the first
visitor does not wait for it: first the map page's imports (no torch) and its first view (the newest
map's points read and published), then what the other pages import (torch among them: about 1.5 s on
2 cores). `latentviz serve` runs this module in place of `python -m streamlit`."""

import importlib
import threading

from streamlit.web.cli import main

# What the pages other than the map import (each loads torch), in the order a visitor is likely to need them
OTHER_PAGES_MODULES = ("backbones", "fit.vq", "fit.vae", "fit.sae", "features.live", "evals")


def _warm_up() -> None:
    from latentviz import charts, codebook, corpus, neighbours, pipeline, webapp  # noqa: F401

    webapp.favicon()
    try:
        webapp.prepare_newest_map()
    except Exception:  # a workspace that cannot be read: the page says why, in one line
        pass
    for name in OTHER_PAGES_MODULES:
        importlib.import_module(f"latentviz.{name}")


if __name__ == "__main__":
    threading.Thread(target=_warm_up, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
