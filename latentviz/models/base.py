"""What every latent model family shares: a config dataclass saved as cfg.json beside
model.safetensors, a registry so a folder reloads by its `kind`, and a forward pass that
returns its own loss and metrics (the training loop only sums and steps).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from latentviz.constants import CONFIG_FILE, WEIGHTS_FILE
from latentviz.errors import LatentvizError


class CheckpointError(LatentvizError):
    """A checkpoint folder that cannot be loaded; the message says what is wrong with it."""


@dataclass
class StepOutput:
    loss: torch.Tensor  # what the optimiser minimises
    metrics: dict[str, float] = field(default_factory=dict)  # detached figures for curves


class LatentModel(torch.nn.Module):
    """What the training loop (train.fit) calls on every model family; each hook does nothing
    unless the family needs it. Subclasses set `config_class` and are registered by kind."""

    config_class: type  # a configs.SavedConfig
    kind: str
    # Buffers added after checkpoints were written without them: such a checkpoint keeps the
    # buffer's initial value, which must reproduce the older model.
    tensors_absent_in_old_checkpoints: tuple[str, ...] = ()

    def prepare(self, *first_batch: torch.Tensor) -> None:
        """Shown a new run's first batch whole before its first step, for data-dependent initialisation
        (every process of a distributed run sees all of it, though each trains on a slice)."""

    def set_step(self, step: int, steps: int) -> None:
        """Told the step (of `steps`) before each training forward pass, for schedules such as KL annealing."""

    def before_optimizer_step(self) -> None:
        """Called after backward, before the optimiser steps (e.g. to project gradients)."""

    def after_optimizer_step(self) -> None:
        """Called after the optimiser step (e.g. to renormalise decoder rows)."""


REGISTRY: dict[str, type[LatentModel]] = {}


def register(kind: str):
    """Class decorator: models of this kind reload from a folder whose cfg.json says so."""

    def add(cls):
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return add


def save(model: torch.nn.Module, folder: str | Path) -> Path:
    """Write cfg.json and model.safetensors; a crash mid-write leaves the old files intact."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"kind": model.kind, **asdict(model.config)}
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(tensors, folder / (WEIGHTS_FILE + ".tmp"))
    (folder / (CONFIG_FILE + ".tmp")).write_text(json.dumps(config, indent=2))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)
    return folder


def read_config(folder: Path, what: str) -> dict:
    """The folder's cfg.json; a missing or malformed file gets a one-line CheckpointError."""
    try:
        return json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no {CONFIG_FILE}; is this {what} folder?") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{folder / CONFIG_FILE}: not valid JSON ({error.msg} at line {error.lineno})") from None


def load(folder: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a model from its folder. Reads JSON and safetensors only: nothing is unpickled."""
    folder = Path(folder)
    config = read_config(folder, "a latentviz model")
    kind = config.pop("kind", None)
    if kind not in REGISTRY:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: unknown model kind {kind!r}; known: {', '.join(sorted(REGISTRY))}"
        )
    cls = REGISTRY[kind]
    unknown = set(config) - {f.name for f in fields(cls.config_class)} - set(cls.config_class.retired_fields)
    if unknown:
        raise CheckpointError(f"{folder / CONFIG_FILE}: unknown fields {', '.join(sorted(unknown))} for a {kind} model")
    model = cls(cls.config_class.from_saved(config))
    if not (folder / WEIGHTS_FILE).exists():
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}")
    state = load_file(folder / WEIGHTS_FILE)
    initial = model.state_dict()
    state = {name: initial[name] for name in cls.tensors_absent_in_old_checkpoints} | state
    missing = set(model.state_dict()) - set(state)
    if missing:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing tensors {', '.join(sorted(missing))}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE}: does not fit its cfg.json ({str(error).splitlines()[-1].strip()})"
        ) from None
    return model.to(device)
