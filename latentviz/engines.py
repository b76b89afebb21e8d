"""Where a step's heavy work runs: in this process (`local`, the default) or on the workers of a Ray
cluster (`ray`: `pip install 'latentviz[ray]'`).

A step (encode, capture, an SAE's feature activations) splits its input into chunks and names a
worker: a class built once per process (it loads its model) and called on one chunk at a time,
returning a dict of arrays. Both engines run the same worker on the same chunks and hand the results
back in order, and the step stores each one as it arrives, so progress, Cancel and resume work the
same, and the stored results are the same to float tolerance (a Ray worker uses one thread per CPU it
holds). On Ray the chunks go through Ray Data (`map_batches`, one chunk per call, the workers as a
pool of actors, a GPU each where the cluster has GPUs). Chunks and results travel as `.npz` bytes
(arrays only, read back without pickle).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from latentviz.errors import LatentvizError
from latentviz.store.connection import npz_arrays, npz_bytes

if TYPE_CHECKING:
    from latentviz.steps import Engine

ENGINES = ("local", "ray")
_default: Engine | None = None  # this process's engine when a step names none (engines.use)


def use(engine: Engine) -> None:
    """The engine of every step this process runs that names none: `latentviz worker --engine ray`
    runs the app's queued encodes, captures and feature builds on a Ray cluster."""
    global _default
    _default = engine


def run(
    worker: type,
    args: tuple,
    chunks: list[dict[str, np.ndarray]],
    *,
    engine: Engine | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """`worker(*args)(chunk)` for every chunk, in order, where `engine` says (none: this process's
    engine, `use`, else local). `progress(done)` hears how far the worker is within a chunk, on the
    local engine (a Ray worker reports whole chunks)."""
    engine = engine or _default
    if engine is None or engine.engine == "local":
        built = worker(*args)
        for chunk in chunks:
            yield built(chunk, progress) if progress else built(chunk)
    elif engine.engine == "ray":
        yield from _on_ray(worker, args, chunks, engine.address, engine.workers)
    else:
        raise LatentvizError(f"no engine named {engine.engine!r}: choose {' or '.join(ENGINES)}")


def start_cluster(address: str | None = None, cpus: int | None = None) -> None:
    """Join the Ray cluster at `address`, or start one on this machine (with `cpus` CPUs: default all).
    A cluster started here runs its workers at normal priority: Ray's default (niceness 15) starves
    them whenever anything else is busy, a hundredfold slower on a loaded two-core machine."""
    import ray

    if address is None:
        os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address=address, num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


class _Actor:
    """A Ray Data actor around a worker: builds it once, then answers one chunk per batch."""

    def __init__(self, worker: type, args: tuple, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.worker = worker(*args)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"result": np.array([npz_bytes(self.worker(npz_arrays(chunk))) for chunk in batch["chunk"]], object)}


def _on_ray(worker: type, args: tuple, chunks: list[dict], address: str | None, workers: int | None):
    try:
        import ray
        import ray.data
    except ImportError:
        raise LatentvizError("--engine ray needs Ray: pip install 'latentviz[ray]' (or ray[data])") from None
    if not chunks:
        return
    started = not ray.is_initialized()
    if started:
        start_cluster(address)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results in the order of the chunks
        context.enable_progress_bars = False  # the step reports progress itself
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        pool = workers or gpus or max(int(resources.get("CPU", 1)), 1)
        cpus = 1 if gpus else max(int(resources.get("CPU", 1)) // pool, 1)
        items = [{"chunk": npz_bytes(chunk)} for chunk in chunks]
        results = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _Actor,
            fn_constructor_args=(worker, args, cpus),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(pool, len(items))),
            num_cpus=cpus,
            num_gpus=1 if gpus else 0,
        )
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for result in batch["result"]:
                yield npz_arrays(result)
    finally:
        if started:
            ray.shutdown()
