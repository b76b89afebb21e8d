"""The one training loop, for every model family. It is blind to the backbone and the model:
it draws batches from a tensor of features, steps the optimiser on the loss the model returns,
evaluates on held-out rows, checkpoints, and resumes. Batches and the learning rate are pure
functions of the step, so a resumed run sees the batches and schedule it would have seen.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from latentviz import distributed
from latentviz.configs import TrainConfig
from latentviz.constants import OPTIMIZER_FILE, TRAINER_FILE
from latentviz.models import base


def warmup_steps(config: TrainConfig) -> int:
    """The warm-up, at most a tenth of the run: a short run still reaches its peak rate."""
    return max(1, min(config.warmup, config.steps // 10))


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    warmup = warmup_steps(config)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def batch_at(step: int, n: int, config: TrainConfig) -> torch.Tensor:
    """Row indices of the batch for a step: the same on every run with the same seed."""
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    return torch.randint(n, (min(config.batch_size, n),), generator=generator)


Data = torch.Tensor | tuple[torch.Tensor, ...]  # one tensor, or several indexed together (tokens, embeddings)


def rows(data: Data, index) -> tuple[torch.Tensor, ...]:
    """The selected rows of every tensor of `data`, as the model's positional arguments."""
    return tuple(t[index] for t in data) if isinstance(data, tuple) else (data[index],)


def size(data: Data) -> int:
    return len(data[0]) if isinstance(data, tuple) else len(data)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Data, batch_size: int = 4096) -> dict[str, float]:
    """The model's metrics averaged over `data` (weighted by batch size)."""
    model.eval()
    totals: dict[str, float] = {}
    n = size(data)
    for start in range(0, n, batch_size):
        chunk = rows(data, slice(start, start + batch_size))
        out = model(*chunk)
        for name, value in {"loss": float(out.loss), **out.metrics}.items():
            totals[name] = totals.get(name, 0.0) + value * len(chunk[0])
    model.train()
    return {name: value / n for name, value in totals.items()}


def fit(
    model: base.LatentModel,
    train: Data,
    *,
    config: TrainConfig,
    held_out: Data | None = None,
    folder: Path | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    on_eval: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train `model` on rows of `train`; returns the evaluation history. The model's hooks
    (base.LatentModel) hear the step and the optimiser steps. Under torchrun each process trains on
    its slice of every batch with gradients averaged (distributed.py); process 0 alone evaluates,
    checkpoints and reports.

    With `folder`, checkpoints go there (model: cfg.json + model.safetensors; optimiser and step
    beside them), and a folder holding a checkpoint is resumed from its step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start, history = 0, []
    if folder is not None and (Path(folder) / TRAINER_FILE).exists():
        start, history = _resume(model, optimizer, Path(folder))
    model.train()
    if start == 0:
        model.prepare(*rows(train, batch_at(0, size(train), config)))
    main = distributed.is_main()  # the one process that evaluates, checkpoints and reports
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        model.set_step(step, config.steps)
        out = model(*rows(train, distributed.my_slice(batch_at(step, size(train), config))))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        distributed.average_gradients(model)
        model.before_optimizer_step()
        optimizer.step()
        model.after_optimizer_step()
        done = step + 1
        if main and held_out is not None and (done % config.eval_every == 0 or done == config.steps):
            metrics = evaluate(model, held_out)
            history.append({"step": done, **metrics})
            if on_eval:
                on_eval(done, metrics)
        if main and folder is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            _checkpoint(model, optimizer, Path(folder), done, history)
        if progress:
            try:
                progress(done, config.steps, {"loss": float(out.loss.detach()), **out.metrics})
            except BaseException:  # the caller stopped the run: keep this step's weights to resume from
                if main and folder is not None:
                    _checkpoint(model, optimizer, Path(folder), done, history)
                raise
    return history


def checkpoint_step(folder: Path) -> int:
    """The step a run's last checkpoint was taken at (0 when there is none)."""
    state = Path(folder) / TRAINER_FILE
    return json.loads(state.read_text())["step"] if state.exists() else 0


def _rng_state() -> dict:
    """The torch, numpy and Python random states, as JSON: a resumed run draws the same dropout
    masks and samples as an uninterrupted one."""
    numpy_state, (version, internal, gauss) = np.random.get_state(), random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": [version, list(internal), gauss],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _checkpoint(model, optimizer, folder: Path, step: int, history: list[dict]) -> None:
    base.save(model, folder)
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)  # our own file, read back with weights_only=True
    (folder / TRAINER_FILE).write_text(json.dumps({"step": step, "history": history, "rng": _rng_state()}))


def _resume(model, optimizer, folder: Path) -> tuple[int, list[dict]]:
    state = json.loads((folder / TRAINER_FILE).read_text())
    saved = base.load(folder)
    if asdict(saved.config) != asdict(model.config):
        raise base.CheckpointError(f"{folder}: holds a checkpoint of a different configuration; choose a new folder")
    model.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))
    if "rng" in state:  # checkpoints written before RNG states were kept resume with the current state
        _set_rng_state(state["rng"])
    return state["step"], state["history"]
