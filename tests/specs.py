"""Run specs for tests: the family's defaults with the few settings a test changes (SAELens's
build_*_cfg(**overrides) idea)."""

from dataclasses import replace

from latentviz import runs, train


def spec(run, model: dict | None = None, training: dict | None = None, **fields):
    """`run` with some run fields, model options and training settings replaced."""
    return replace(
        run, **fields, model=replace(run.model, **(model or {})), training=replace(run.training, **(training or {}))
    )


def vq(dataset: str, model=None, training=None, **fields) -> runs.VQRun:
    return spec(runs.VQRun(dataset=dataset), model, training, **fields)


def vae(dataset: str, model=None, training=None, **fields) -> runs.VAERun:
    return spec(runs.VAERun(dataset=dataset), model, training, **fields)


def sae(dataset: str, model=None, training=None, **fields) -> runs.SAERun:
    return spec(runs.SAERun(dataset=dataset), model, training, **fields)


def loop(**settings) -> train.TrainConfig:
    return train.TrainConfig(**settings)
