"""Training orchestration, one module per model family: `vq`, `vae` and `sae` each have
`train(store, run, progress)` for a run spec (runs.py), `resume(store, model_id, progress)`,
`curves(store, model_id)` and their held-out figures. What they share is in `common`; each family is
registered once, in runs.FAMILIES."""

from latentviz.fit import common, sae, vae, vq

__all__ = ["common", "sae", "vae", "vq"]
