"""Vector quantisation: small quantiser modules with one interface, and a sentence VQ model.

Every quantiser maps z (N, D) to `Quantized(z_q, indices, loss, stats)`:
  - `VectorQuantizer`: nearest codebook vector with a straight-through gradient and a
    commitment loss (van den Oord et al., 2017); options: EMA codebook updates instead of a
    codebook loss, k-means initialisation from the first batch, restart of dead codes from the
    batch, cosine-similarity codebooks, and the rotation trick (Fifty et al., 2024) as the
    gradient path through the quantiser.
  - `FSQ`: finite scalar quantisation (Mentzer et al., 2023); the codebook is implicit,
    prod(levels) codes, never materialised.
  - `ResidualVQ`: N VectorQuantizers, each quantising what the previous ones left.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from latentviz.configs import VQConfig
from latentviz.errors import ConfigError
from latentviz.models.base import LatentModel, StepOutput, register


class Quantized(NamedTuple):
    z_q: torch.Tensor  # (N, D) quantised vectors, carrying gradients back to z
    indices: torch.Tensor  # (N,) code ids, or (N, stages) for residual VQ
    loss: torch.Tensor  # scalar auxiliary loss (commitment, codebook)
    stats: dict[str, float]  # per-batch figures for training curves


def kmeans(x: torch.Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    """k centres by Lloyd's algorithm from k-means++ seeds (each next seed drawn with probability
    proportional to its squared distance from the seeds so far, so clusters are rarely missed)."""
    n = x.shape[0]
    seeds = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (x - x[seeds[0]]).pow(2).sum(1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = (
            int(torch.multinomial(nearest / total, 1, generator=generator))
            if total > 0
            else int(torch.randint(n, (1,), generator=generator))
        )
        seeds.append(pick)
        nearest = torch.minimum(nearest, (x - x[pick]).pow(2).sum(1))
    centres = x[seeds].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]  # an empty cluster keeps its seed
    return centres


def rotate_to(z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The rotation trick: λ·R·z, with R the rotation taking z's direction to q's and
    λ = ‖q‖/‖z‖, both held constant. The value equals q; the gradient reaching z is λ·Rᵀ·g,
    so it keeps the angle between z and q instead of copying g as the straight-through estimator does."""
    z_norm = z.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    q_norm = q.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    z_hat, q_hat = (z / z_norm).detach(), (q / q_norm).detach()
    r = F.normalize(z_hat + q_hat, dim=-1)  # R = I - 2 r rᵀ + 2 q̂ ẑᵀ maps ẑ to q̂
    rotated = z - 2 * (z * r).sum(-1, keepdim=True) * r + 2 * (z * z_hat).sum(-1, keepdim=True) * q_hat
    return (q_norm / z_norm).detach() * rotated


def _usage_stats(indices: torch.Tensor, size: int) -> dict[str, float]:
    counts = torch.bincount(indices.reshape(-1), minlength=size).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "used": float((counts > 0).sum())}


class VectorQuantizer(nn.Module):
    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        commitment: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        kmeans_init: bool = False,
        restart_dead: bool = False,
        dead_share: float = 0.03,
        rotation_trick: bool = False,
        cosine: bool = False,
    ):
        super().__init__()
        self.dim, self.codebook_size = dim, codebook_size
        self.commitment, self.ema, self.decay = commitment, ema, decay
        self.kmeans_init, self.restart_dead, self.dead_share = kmeans_init, restart_dead, dead_share
        self.rotation_trick, self.cosine = rotation_trick, cosine
        codebook = torch.randn(codebook_size, dim) / math.sqrt(dim)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(codebook_size))
            self.register_buffer("ema_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        # Share of assignments each code gets, as an EMA; starts at the fair share 1/K.
        self.register_buffer("usage", torch.full((codebook_size,), 1.0 / codebook_size))
        self.register_buffer("initialised", torch.tensor(not kmeans_init))
        self.restarts = 0  # dead codes re-seeded since construction (a training figure, not state)

    def codes(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1) if self.cosine else self.codebook

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        codes = self.codes()
        if self.cosine:
            return (F.normalize(z, dim=-1) @ codes.T).argmax(1)
        distances = z.pow(2).sum(1, keepdim=True) - 2 * z @ codes.T + codes.pow(2).sum(1)[None]
        return distances.argmin(1)

    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        centres = kmeans(F.normalize(z, dim=-1) if self.cosine else z, self.codebook_size)
        self.codebook.data.copy_(centres)
        if self.ema:
            self.ema_sum.copy_(centres)
            self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, z: torch.Tensor, indices: torch.Tensor) -> None:
        onehot_counts = torch.bincount(indices, minlength=self.codebook_size).to(z.dtype)
        self.usage.mul_(self.decay).add_(onehot_counts / len(indices), alpha=1 - self.decay)
        if self.ema:
            target = F.normalize(z, dim=-1) if self.cosine else z
            sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, target)
            self.ema_count.mul_(self.decay).add_(onehot_counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            # Laplace smoothing keeps rarely used codes from dividing by ~0.
            total = self.ema_count.sum()
            count = (self.ema_count + 1e-5) / (total + self.codebook_size * 1e-5) * total
            self.codebook.copy_(self.ema_sum / count[:, None])
        if self.restart_dead:
            dead = (self.usage * self.codebook_size < self.dead_share).nonzero().squeeze(1)
            if len(dead):
                picks = torch.randint(len(z), (len(dead),), device=z.device)
                fresh = z[picks] + 1e-3 * torch.randn_like(z[picks]) * z.std()
                self.codebook.data[dead] = fresh
                if self.ema:
                    self.ema_sum[dead] = fresh
                    self.ema_count[dead] = 1.0
                self.usage[dead] = 1.0 / self.codebook_size
                self.restarts += len(dead)

    def forward(self, z: torch.Tensor) -> Quantized:
        if self.training and not bool(self.initialised):
            self._init_from(z.detach())
        indices = self.nearest(z.detach())
        q = self.codes()[indices]
        target = F.normalize(z, dim=-1) if self.cosine else z
        loss = self.commitment * F.mse_loss(target, q.detach())
        if not self.ema:
            loss = loss + F.mse_loss(q, target.detach())  # the codebook loss moves codes towards their inputs
        if self.training:
            self._update(z.detach(), indices)
        z_q = rotate_to(target, q) if self.rotation_trick else target + (q - target).detach()
        stats = _usage_stats(indices, self.codebook_size)
        stats["ema_dead"] = float((self.usage * self.codebook_size < self.dead_share).sum())  # dead by the EMA rule
        return Quantized(z_q, indices, loss, stats)


class FSQ(nn.Module):
    """Finite scalar quantisation: each of the D = len(levels) dimensions is bounded and rounded
    to one of levels[i] values; a code is the mixed-radix number of those digits."""

    def __init__(self, levels: list[int]):
        super().__init__()
        if any(level < 2 for level in levels):
            raise ConfigError(f"FSQ levels must each be at least 2, got {levels}")
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long))
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.long), 0))
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash z so rounding gives levels[i] integer values per dimension (centred on 0)."""
        levels = self.levels.to(z.dtype)
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> Quantized:
        bounded = self.bound(z)
        rounded = bounded + (bounded.round() - bounded).detach()  # straight-through rounding
        digits = rounded.detach().long() + self.levels // 2  # 0 .. levels-1
        indices = (digits * self.basis).sum(-1)
        z_q = rounded / (self.levels // 2).to(z.dtype)  # scaled into [-1, 1]
        return Quantized(z_q, indices, z.new_zeros(()), _usage_stats(indices, self.codebook_size))

    def codes_of(self, indices: torch.Tensor) -> torch.Tensor:
        """The quantised vectors of given code ids (only those: the codebook is never built)."""
        digits = (indices[..., None] // self.basis) % self.levels
        return (digits - self.levels // 2).float() / (self.levels // 2).float()


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, codebook_size: int, stages: int, **options):
        super().__init__()
        self.stages = nn.ModuleList(VectorQuantizer(dim, codebook_size, **options) for _ in range(stages))
        self.codebook_size = codebook_size

    def forward(self, z: torch.Tensor) -> Quantized:
        residual, z_q, indices, loss, stats = z, torch.zeros_like(z), [], z.new_zeros(()), {}
        for number, stage in enumerate(self.stages, start=1):
            out = stage(residual)
            z_q = z_q + out.z_q
            residual = residual - out.z_q.detach()
            indices.append(out.indices)
            loss = loss + out.loss
            stats.update({f"stage{number}_{name}": value for name, value in out.stats.items()})
            stats[f"stage{number}_residual"] = float(residual.detach().pow(2).mean())
        for name in ("perplexity", "used", "ema_dead"):
            stats[name] = stats[f"stage1_{name}"]
        return Quantized(z_q, torch.stack(indices, dim=1), loss, stats)


# -- the sentence VQ model -------------------------------------------------------------------------


def build_quantizer(config: VQConfig) -> nn.Module:
    if config.quantizer == "fsq":
        return FSQ(config.levels)
    options = {
        "commitment": config.commitment,
        "ema": config.quantizer in ("vq-ema", "rvq"),
        "decay": config.decay,
        "kmeans_init": config.kmeans_init,
        "restart_dead": config.restart_dead,
        "rotation_trick": config.rotation_trick,
        "cosine": config.cosine,
    }
    if config.quantizer == "rvq":
        return ResidualVQ(config.d_code, config.codebook_size, config.stages, **options)
    return VectorQuantizer(config.d_code, config.codebook_size, **options)


@register("vq")
class SentenceVQ(LatentModel):
    """Sentence embedding (D) → `groups` discrete codes → reconstructed embedding.
    One quantiser is shared by the groups, so a code means the same thing wherever it appears."""

    config_class = VQConfig

    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        width = config.groups * config.d_code
        self.encoder = nn.Sequential(nn.Linear(config.d_in, config.hidden), nn.GELU(), nn.Linear(config.hidden, width))
        self.quantizer = build_quantizer(config)
        self.decoder = nn.Sequential(nn.Linear(width, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.d_in))

    def quantize(self, x: torch.Tensor) -> Quantized:
        z = self.encoder(x).reshape(-1, self.config.d_code)  # (B·groups, d_code)
        return self.quantizer(z)

    def forward(self, x: torch.Tensor) -> StepOutput:
        out = self.quantize(x)
        x_hat = self.decoder(out.z_q.reshape(len(x), -1))
        reconstruction = F.mse_loss(x_hat, x)
        metrics = {
            "reconstruction": float(reconstruction.detach()),
            "quantizer_loss": float(out.loss.detach()),
            **out.stats,
        }
        return StepOutput(reconstruction + out.loss, metrics)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code ids per sentence: (B, groups), or (B, groups, stages) for residual VQ."""
        indices = self.quantize(x).indices
        return indices.reshape(len(x), self.config.groups, *indices.shape[1:])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantize(x).z_q.reshape(len(x), -1))
