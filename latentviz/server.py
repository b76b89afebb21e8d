"""`streamlit run`, with a warm-up started in the background as the server starts, so the first
visitor does not wait for it: the pages' heavy imports (torch among them: about 3 s on 2 cores), and
the map page's first view (the newest map's points read and published).
`latentviz serve` runs this module in place of `python -m streamlit`."""

import threading

from streamlit.web.cli import main


def _warm_up() -> None:
    from latentviz import charts, codebook, fit, pipeline, webapp  # noqa: F401

    webapp.favicon()
    try:
        webapp.prepare_newest_map()
    except Exception:  # a workspace that cannot be read: the page says why, in one line
        pass


if __name__ == "__main__":
    threading.Thread(target=_warm_up, daemon=True, name="latentviz-warm-up").start()
    main(prog_name="streamlit")  # the same command line to Streamlit as `python -m streamlit`
