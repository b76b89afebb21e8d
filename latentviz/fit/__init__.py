"""Training orchestration, one module per model family: `vq`, `vae` and `sae` each have
`train(store, run, progress)` for a run spec (runs.py), `resume(store, model_id, progress)`,
`curves(store, model_id)` and their held-out figures. What they share is in `common`."""

from latentviz.fit import sae, vae, vq

FAMILIES = {family.KIND: family for family in (vq, vae, sae)}
