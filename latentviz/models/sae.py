"""Sparse autoencoders on language-model activations: x (d_in) → f (d_sae, sparse) → x̂ = f W_dec + b_dec.

Architectures (`architecture` uses SAELens's names where it has them):
- `standard`: ReLU with an L1 penalty on f weighted by each decoder row's norm (Anthropic, 2024 update);
- `topk`: keep each token's k largest pre-activations (Gao et al., 2024);
- `batchtopk`: keep the batch's k·B largest (Bussmann et al., 2024); at inference one threshold
  shared by every latent, the mean of each batch's smallest kept activation, makes it per-token
  (stored in `threshold`, each entry the same value, so it exports as a JumpReLU);
- `jumprelu`: f = ReLU(z)·H(z − θ) with a learned threshold θ ≥ 0 per latent, trained with a straight-through
  estimator on θ and an L0 penalty (Rajamanoharan et al., 2024), by default quadratic around k
  (Gemma Scope 2), with θ started and scaled from the first batch (SparseAutoencoder._init_from).
Decoder rows are kept at unit norm and their gradient's component along the row is removed before
each step; b_dec starts at the data's geometric median; TopK variants add the AuxK loss, which
reconstructs the residual from the top dead latents (Gao et al., 2024).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from latentviz import distributed
from latentviz.configs import SAEConfig
from latentviz.models.base import LatentModel, StepOutput, register

JUMPRELU_RELATIVE_BANDWIDTH = 0.3  # × the first batch's pre-activation std (README, Defaults)
# θ's parameter is θ / (this × E‖x − b_dec‖₁): see SparseAutoencoder.threshold_scale
JUMPRELU_THRESHOLD_REACH = 0.01


def spread(values: torch.Tensor) -> torch.Tensor:
    """E‖v − E v‖² over the whole batch (every process's slice under torchrun): the variance per row."""
    centre = distributed.mean(values.mean(0))
    return distributed.mean(values.pow(2).sum(-1).mean()) - centre.pow(2).sum()


class _JumpReLU(torch.autograd.Function):
    """ReLU(z)·H(z − θ), with a rectangle-kernel pseudo-derivative for θ (Rajamanoharan et al., 2024).
    The ReLU matters only where θ < 0 (an imported SAE; ours keep θ ≥ 0): as SAELens computes it."""

    @staticmethod
    def forward(ctx, z, threshold, bandwidth):
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return z * ((z > threshold) & (z > 0))

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        window = ((z - threshold).abs() < ctx.bandwidth / 2).to(z.dtype)
        grad_threshold = -(threshold / ctx.bandwidth) * window * grad
        return grad * ((z > threshold) & (z > 0)), grad_threshold.sum(0), None


class _Step(torch.autograd.Function):
    """H(z − θ) for the L0 penalty, with the same pseudo-derivative for θ."""

    @staticmethod
    def forward(ctx, z, threshold, bandwidth):
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return (z > threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        window = ((z - threshold).abs() < ctx.bandwidth / 2).to(z.dtype)
        return None, (-(1.0 / ctx.bandwidth) * window * grad).sum(0), None


def geometric_median(x: torch.Tensor, iterations: int = 100, tolerance: float = 1e-6) -> torch.Tensor:
    """The point minimising the sum of Euclidean distances to the rows of x (Weiszfeld's algorithm)."""
    point = x.mean(0)
    for _ in range(iterations):
        weights = 1.0 / (x - point).norm(dim=1).clamp(min=1e-8)
        new = (weights[:, None] * x).sum(0) / weights.sum()
        if (new - point).norm() < tolerance * max(1.0, float(point.norm())):
            return new
        point = new
    return point


@register("sae")
class SparseAutoencoder(LatentModel):
    config_class = SAEConfig
    # as they trained: θ and penalty unscaled, the window from their config
    tensors_absent_in_old_checkpoints = ("threshold_scale", "penalty_scale", "bandwidth")

    def __init__(self, config: SAEConfig):
        super().__init__()
        self.config = config
        decoder = torch.randn(config.d_sae, config.d_in)
        decoder = decoder / decoder.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        scale = config.encoder_init if config.architecture in ("topk", "batchtopk") else 1.0
        self.W_enc = nn.Parameter(decoder.t() * scale)  # tied at the start, trained apart
        self.b_enc = nn.Parameter(torch.zeros(config.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(config.d_in))
        self.threshold = nn.Parameter(
            torch.full((config.d_sae,), config.jumprelu_init_threshold or 0.0),
            requires_grad=config.architecture == "jumprelu",
        )
        # batchtopk's inference threshold, and how many tokens ago each latent last fired (AuxK)
        self.register_buffer("since_fired", torch.zeros(config.d_sae))
        self.register_buffer("threshold_batches", torch.zeros((), dtype=torch.long))
        self.averaging = False  # batchtopk: the threshold is the plain mean of the final tenth's batches
        self.register_buffer("input_scale", torch.ones(()))
        # jumprelu: θ = threshold · threshold_scale. Adam moves each parameter by about lr a step
        # whatever its size, so a pre-activation can move by lr · ‖x − b_dec‖₁ a step (every W_enc
        # entry at once) while a bare θ moves by lr: the encoder outruns the thresholds, L0 falls
        # far below k and latents die. The scale gives θ a set fraction of the encoder's reach
        # (JUMPRELU_THRESHOLD_REACH; SmolLM2 layer 8, 100 steps, k 32: 0.005 let L0 fall to 16;
        # 0.01, 0.03 and 0.1 held it near 36, 0.01 at the lowest FVU; 1 overshot, 4,272 of 4,608
        # latents dead).
        self.register_buffer("threshold_scale", torch.ones(()))
        # jumprelu: the L0 penalty in the MSE's units, the data's total variance E‖x − x̄‖², so the
        # loss over it is FVU + coefficient · penalty. L0 settles where an extra latent's FVU gain
        # meets the penalty's slope, whatever the activations' size and d_in (weighed per dimension
        # instead, an MSE summed over d_in dimensions outgrew it: L0 41 for k 32 on 576 dimensions)
        self.register_buffer("penalty_scale", torch.ones(()))
        # jumprelu's straight-through window, a tensor so that reading it never syncs a GPU
        self.register_buffer("bandwidth", torch.tensor(float(config.jumprelu_bandwidth or 0.0)))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    # -- the forward pass -------------------------------------------------------------------------

    def _init_from(self, x: torch.Tensor) -> None:
        """First batch: input scale, b_dec at the geometric median of the (scaled) data, and
        jumprelu's penalty scale, and its threshold and window where not given."""
        with torch.no_grad():
            if self.config.normalize_input:
                self.input_scale.fill_(float(self.config.d_in**0.5 / x.norm(dim=1).mean()))
            self.b_dec.copy_(geometric_median(x * self.input_scale))
            if self.config.architecture == "jumprelu":
                z = self.pre_activations(x)
                centred = x * self.input_scale - self.b_dec
                self.penalty_scale.fill_(float((centred - centred.mean(0)).pow(2).sum(1).mean()))
                if self.config.jumprelu_bandwidth is None:
                    self.bandwidth.fill_(JUMPRELU_RELATIVE_BANDWIDTH * float(z.std()))
                if self.config.jumprelu_init_threshold is None:  # θ and its step from the data
                    self.threshold_scale.fill_(JUMPRELU_THRESHOLD_REACH * float(centred.abs().sum(1).mean()))
                    passed = max(1, round(len(x) * self.config.k / self.config.d_sae))
                    theta = z.kthvalue(max(1, len(x) - passed), dim=0).values.clamp(min=1e-6)
                    self.threshold.copy_(theta / self.threshold_scale)
            self.initialised.fill_(True)

    def prepare(self, x: torch.Tensor) -> None:
        if not bool(self.initialised):
            self._init_from(x)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.input_scale - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """Sparse latents f from pre-activations z; per token at inference for every architecture."""
        arch = self.config.architecture
        if arch == "standard":
            return torch.relu(z)
        if arch == "jumprelu":
            return _JumpReLU.apply(z, self.jump_threshold(), self.bandwidth)
        z = torch.relu(z)
        if arch == "batchtopk" and self.training:
            # the whole batch's k·B largest (over every process's slice under torchrun); a value tied with
            # the k·B-th is kept too, so a token drawn twice into a batch is treated the same both times
            smallest = distributed.kth_largest(z, self.config.k * len(z) * distributed.size())
            out = z * (z >= smallest)
            with torch.no_grad():  # the smallest kept value, averaged over batches: the inference threshold
                batches = int(self.threshold_batches)
                rate = 1 / (batches + 1) if self.averaging else (1.0 if batches == 0 else 0.01)
                self.threshold.mul_(1 - rate).add_(rate * smallest)
                self.threshold_batches += 1
            return out
        if arch == "batchtopk":
            return z * (z > self.threshold)
        values, indices = z.topk(self.config.k, dim=-1)
        return torch.zeros_like(z).scatter(-1, indices, values)

    def jump_threshold(self) -> torch.Tensor:
        """θ per latent, in the pre-activations' units (what a JumpReLU export stores)."""
        return self.threshold * self.threshold_scale

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.pre_activations(x))

    def set_step(self, step: int, steps: int) -> None:
        # batchtopk: an EMA of the batches' smallest kept value until the final tenth, then their plain
        # mean, restarted there: weights that barely move by then (the lr has decayed), so inference L0
        # lands near k; an EMA over a short run keeps the early, larger values (L0 well under k).
        averaging_from = steps - max(1, steps // 10)
        self.averaging = step >= averaging_from
        if step == averaging_from:
            self.threshold_batches.zero_()

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """x̂ in the input's own units (the input scale undone)."""
        return (f @ self.W_dec + self.b_dec) / self.input_scale

    def forward(self, x: torch.Tensor) -> StepOutput:
        if self.training and not bool(self.initialised):
            self._init_from(x)
        z = self.pre_activations(x)
        arch = self.config.architecture
        if arch == "topk":
            # Decode from the k active latents only: a weighted sum of k decoder rows per token
            # (embedding_bag) instead of a dense (B × d_sae) @ (d_sae × d_in) product. The top k of
            # relu(z) are relu of the top k of z: one pass over the (B × d_sae) pre-activations fewer.
            values, indices = z.topk(self.config.k, dim=-1)
            values = torch.relu(values)
            x_hat = F.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum") + self.b_dec
            active = values.detach() > 0
            fired, l0 = indices[active], float(active.sum(-1).float().mean())
        elif arch == "batchtopk":
            # k per token on average: decode the kept latents only, as TopK does (a bag per token)
            f = self.activate(z)
            rows, latents = f.detach().nonzero(as_tuple=True)  # row-major: each token's latents together
            starts = torch.searchsorted(rows, torch.arange(len(f), device=rows.device))
            x_hat = F.embedding_bag(latents, self.W_dec, starts, per_sample_weights=f[rows, latents], mode="sum")
            x_hat = x_hat + self.b_dec
            fired, l0 = latents.unique(), len(latents) / len(f)
        else:
            f = self.activate(z)
            x_hat = f @ self.W_dec + self.b_dec
            fired, l0 = (f > 0).any(0).nonzero().flatten(), float((f > 0).float().sum(-1).mean())
        target = x * self.input_scale
        mse = (x_hat - target).pow(2).sum(-1).mean()
        loss = mse
        if arch == "standard":
            loss = loss + self.config.l1_coefficient * (f * self.W_dec.norm(dim=1)).sum(-1).mean()
        elif arch == "jumprelu":
            active = _Step.apply(z, self.jump_threshold(), self.bandwidth).sum(-1)
            if self.config.jumprelu_sparsity == "quadratic":
                penalty = 2 / self.config.k * (active - self.config.k).pow(2)
            else:
                penalty = active
            loss = loss + self.config.l0_coefficient * self.penalty_scale * penalty.mean()
        elif self.training:
            loss = loss + self.config.aux_coefficient * self._aux_loss(z, target - x_hat.detach(), target)
        if self.training:
            with torch.no_grad():  # over the whole batch, when processes each train on a slice of it
                self.since_fired.add_(len(x) * distributed.size())
                if distributed.active():
                    fired = distributed.any_(
                        torch.zeros_like(self.since_fired, dtype=torch.bool).index_fill(0, fired, True)
                    )
                self.since_fired[fired] = 0
        variance = (target - target.mean(0)).pow(2).sum()
        fvu = float((x_hat - target).detach().pow(2).sum() / variance)
        # the share of latents silent for dead_after training tokens: the training state, not this batch's
        dead = float((self.since_fired >= self.config.dead_after).float().mean())
        return StepOutput(loss, {"mse": float(mse.detach()), "l0": l0, "fvu": fvu, "dead": dead})

    def _aux_loss(self, z: torch.Tensor, residual: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reconstruct what the live latents missed with the top-k_aux dead ones (AuxK, Gao et al.)."""
        dead = self.since_fired >= self.config.dead_after
        if not dead.any():
            return z.new_zeros(())
        k = min(self.config.aux_k, int(dead.sum()))
        values, indices = z.masked_fill(~dead, -torch.inf).topk(k, dim=-1)
        # a weighted sum of k decoder rows per token, as in the main decode: no dense product
        residual_hat = F.embedding_bag(indices, self.W_dec, per_sample_weights=torch.relu(values), mode="sum")
        # Gao et al.'s reference loss is the main MSE over the input's variance plus α × this MSE over the
        # residual's variance; the main loss here is the plain MSE, so this term is scaled by the ratio of
        # the two variances (whole-batch constants: no gradient flows through them)
        ratio = spread(target) / spread(residual).clamp(min=1e-8)
        return (residual_hat - residual).pow(2).sum(-1).mean() * ratio

    # -- kept true around each optimiser step (called by the training loop) ------------------------

    def before_optimizer_step(self) -> None:
        """Remove the part of each decoder row's gradient that would only change its norm."""
        if self.W_dec.grad is not None:
            with torch.no_grad():
                rows = self.W_dec / self.W_dec.norm(dim=1, keepdim=True)
                self.W_dec.grad -= (self.W_dec.grad * rows).sum(1, keepdim=True) * rows

    def after_optimizer_step(self) -> None:
        with torch.no_grad():
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)
            if self.config.architecture == "jumprelu":
                self.threshold.clamp_(min=0)  # θ < 0 would pass negative pre-activations (SAELens keeps log θ)
