"""Training orchestration, one module per model family: `vq`, `vae` and `sae` each have
`train(store, run, progress)` for a run spec (runs.py), `resume(store, model_id, progress)`,
`curves(store, model_id)` and their held-out figures. What they share is in `common`; each family is
registered once, in runs.FAMILIES."""

import importlib

__all__ = ["common", "sae", "vae", "vq"]


def __getattr__(name: str):
    """`fit.sae` and the others are imported on first use: they load torch, which the map's pages never need."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
