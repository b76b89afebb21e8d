"""Activations built from known feature directions, where an SAE's recovery of the true features can be
measured (metrics.feature_recovery) as well as its reconstruction: what SAE defaults are chosen and
tested on beside real captures (bench/sae_defaults.py).

Each token is offset + scale · Σᵢ aᵢ dᵢ + noise: feature i fires independently with probability pᵢ,
log-uniform over three decades (as SAE latents' densities spread on LM activations) and scaled so that
a token holds `active` features on average; when it fires its magnitude aᵢ is its own typical size
(log-normal across features) times a per-token factor around 1. Directions are random unit vectors, so
with more features than dimensions they overlap (superposition)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DENSITY_DECADES = (-4.0, -1.0)  # log10 of the rarest and the commonest feature's firing probability
SALT = 0x5EED_F00D


@dataclass(frozen=True)
class Synthetic:
    d_in: int = 256
    features: int = 2048
    active: float = 23.0  # features firing on a token, on average
    scale: float = 1.0  # multiplies every feature's contribution: the activations' size
    offset: float = 0.0  # norm of a direction every token shares (LM residual streams have a large one)
    noise: float = 0.0  # standard deviation of dense Gaussian noise per dimension, in units of `scale`
    seed: int = 0


class Features:
    """The true features of a Synthetic spec: directions (features, d_in), firing probabilities and
    typical magnitudes, and the shared offset."""

    def __init__(self, spec: Synthetic):
        self.spec = spec
        # salted: an SAE initialised after torch.manual_seed(seed) would otherwise draw the true directions
        generator = torch.Generator().manual_seed(SALT + spec.seed)
        directions = torch.randn(spec.features, spec.d_in, generator=generator)
        self.directions = directions / directions.norm(dim=1, keepdim=True)
        low, high = DENSITY_DECADES
        log_density = low + (high - low) * torch.rand(spec.features, generator=generator)
        density = 10**log_density
        self.probabilities = (density * spec.active / density.sum()).clamp(max=1.0)
        self.magnitudes = torch.exp(0.5 * torch.randn(spec.features, generator=generator))
        offset = torch.randn(spec.d_in, generator=generator)
        self.offset = offset / offset.norm() * spec.offset

    def sample(self, tokens: int, seed: int, chunk: int = 8192) -> torch.Tensor:
        """`tokens` activations (tokens, d_in), float32; the same for the same seed."""
        generator = torch.Generator().manual_seed(SALT + seed)
        out = torch.empty(tokens, self.spec.d_in)
        for start in range(0, tokens, chunk):
            rows = min(chunk, tokens - start)
            fires = torch.rand(rows, self.spec.features, generator=generator) < self.probabilities
            factor = (1 + 0.25 * torch.randn(rows, self.spec.features, generator=generator)).clamp(min=0.1)
            coefficients = fires * factor * self.magnitudes
            noise = self.spec.noise * torch.randn(rows, self.spec.d_in, generator=generator)
            out[start : start + rows] = self.offset + self.spec.scale * (coefficients @ self.directions + noise)
        return out
