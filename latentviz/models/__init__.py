"""Latent model families, one file each; importing this package registers them all."""

from latentviz.models import sae, vae, vq  # noqa: F401  (registers the "sae", "vae" and "vq" kinds)
from latentviz.models.base import REGISTRY, CheckpointError, StepOutput, load, save

__all__ = ["REGISTRY", "CheckpointError", "StepOutput", "load", "save"]
