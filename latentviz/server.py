"""`streamlit run`, with the pages' heavy imports (torch, transformers, UMAP: about 4 s on 2 cores)
started in the background as the server starts, so the first visitor does not wait for them.
`latentviz serve` runs this module in place of `python -m streamlit`."""

import threading

from streamlit.web.cli import main


def _import_what_pages_use() -> None:
    from latentviz import charts, codebook, fit, pipeline, webapp  # noqa: F401


if __name__ == "__main__":
    threading.Thread(target=_import_what_pages_use, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
