"""`streamlit run`, with the pages' heavy imports (torch, transformers, scikit-learn: about 6 s on 2 cores)
started in the background as the server starts, so the first visitor does not wait for them.
`latentviz serve` runs this module in place of `python -m streamlit`."""

import importlib
import threading

from streamlit.web.cli import main


def _import_what_pages_use() -> None:
    from latentviz import charts, codebook, fit, pipeline, webapp  # noqa: F401

    # imported where it is used, but the map's first run names its areas with k-means (2 s here)
    importlib.import_module("sklearn.cluster")


if __name__ == "__main__":
    threading.Thread(target=_import_what_pages_use, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
