"""Each model family's config and the training loop's: plain dataclasses whose fields carry their
defaults and help text (flags.option), saved as a model's cfg.json and nested in the run specs
(runs.py). Kept apart from the models and without torch, so the CLI and the pages read every default
without loading it (about 1.5 s on 2 cores): the Latent Map's first view imports no torch at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentviz.errors import ConfigError
from latentviz.flags import option


class SavedConfig:
    """What every family's config shares: it is read back from a model's cfg.json or run record,
    older ones included."""

    # Fields added after checkpoints were written without them, with the value that reproduces those
    # older models (the default may have moved on since); and fields older checkpoints have that no
    # longer exist (they only steered training). Plain class attributes, not dataclass fields.
    absent_in_old_checkpoints = {}
    retired_fields = ()

    @classmethod
    def from_saved(cls, saved: dict):
        saved = {k: v for k, v in {**cls.absent_in_old_checkpoints, **saved}.items() if k not in cls.retired_fields}
        return cls(**saved)


# -- sparse autoencoders (models/sae.py) ---------------------------------------------------------------

ARCHITECTURES = ("standard", "topk", "batchtopk", "jumprelu")
JUMPRELU_SPARSITIES = ("quadratic", "step")


@dataclass
class SAEConfig(SavedConfig):
    # written when the L0 penalty was linear, and when the encoder started at the decoder's scale
    absent_in_old_checkpoints = {"jumprelu_sparsity": "step", "encoder_init": 1.0}

    d_in: int = option(576, "activation size", derived=True)  # set from the capture
    d_sae: int = option(4608, "latents (8 × SmolLM2's 576)", flag="width")
    architecture: str = option(
        "topk", "standard (ReLU + L1), topk, batchtopk or jumprelu", flag="arch", choices=ARCHITECTURES
    )
    k: int = option(32, "topk / batchtopk: active latents per token; jumprelu: the L0 the quadratic penalty aims at")
    # On normalised inputs (E‖x‖ = √d_in), so it means the same on any activations' size. SmolLM2
    # layer 4, 100 steps: λ 0.1, 0.3, 1 gave L0 230, 91, 4.7; 0.5 lands near k = 32 (docs/defaults.md).
    # (Anthropic's 2024 recipe uses 5, on runs far longer than these, at a far smaller rate.)
    l1_coefficient: float = option(0.5, "standard: weight of the L1 penalty", flag="l1")
    # quadratic: 2/k·(L0 − k)² per token (Gemma Scope 2, SAELens's "quadratic" mode) lands near L0 = k
    # with no coefficient to tune per dataset; the linear L0 penalty's L0 depends on the data's scale
    jumprelu_sparsity: str = option(
        "quadratic", "jumprelu: L0 penalty, quadratic around k or linear (step)", choices=JUMPRELU_SPARSITIES
    )
    # In FVU units (the penalty is weighed by the data's total variance): L0 settles where an extra
    # latent's FVU gain, about 0.002 near k on SmolLM2 and synthetic data, meets 4·this·(L0 − k)/k,
    # a few percent above k at 0.01 (docs/defaults.md)
    l0_coefficient: float = option(0.01, "jumprelu: weight of the L0 penalty, in FVU units", flag="l0")
    # Set from the first batch when not given: each latent's threshold where k of d_sae tokens pass
    # it, so L0 starts at k (a fixed 0.001 on SmolLM2's raw activations, whose pre-activations are
    # ~3.5 wide, left L0 at 1,151 after 100 steps), and the window at a fraction of the
    # pre-activations' spread (a fixed 0.001 holds almost no token, so θ hardly learns).
    jumprelu_bandwidth: float | None = option(
        None, "jumprelu: width of the straight-through window (default: 0.3 × the first batch's pre-activation std)"
    )
    jumprelu_init_threshold: float | None = option(
        None,
        "jumprelu: initial threshold, raw units (default: per latent, passed by k of every d_sae first-batch "
        "tokens, with θ's step and the penalty scaled to the data)",
    )
    aux_k: int = option(256, "topk / batchtopk: dead latents used by the AuxK loss")
    aux_coefficient: float = option(1 / 32, "topk / batchtopk: weight of the AuxK loss")
    # Gao et al. use 10M tokens; CPU runs are far shorter
    dead_after: int = option(200_000, "tokens without firing after which a latent counts as dead for AuxK")
    # The encoder starts as the decoder's transpose, scaled down (Anthropic's 2024 update and SAELens
    # start their latents at a tenth of the decoder's scale): BatchTopK on SmolLM2 layer 16's MLP output,
    # 100 steps, validation FVU 0.370 at 1 against 0.348 at 0.1; synthetic MCC 0.408 against 0.424
    # (docs/defaults.md)
    encoder_init: float = option(
        0.1, "topk / batchtopk: the encoder's row norm at the start (the decoder's rows are unit)"
    )
    # On: every other default then means the same on activations of any size (SAELens's
    # expected_average_only_in; Anthropic's 2024 update). Exports fold the factor back in.
    normalize_input: bool = option(True, "scale inputs so that E‖x‖ = √d_in (the factor is set from the first batch)")
    # Where it reads: set from the run (runs.SAERun), stored so a checkpoint knows its hook point.
    layer: int = option(
        8, "block whose output is read (1-based, as hidden_states[layer]; SAELens: blocks.{layer-1})", derived=True
    )
    site: str = option("resid_post", "resid_post, mlp_out or attn_out (settings.SITES)", derived=True)
    model_name: str = option("smollm2", "the LM it reads", derived=True)

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"unknown SAE architecture {self.architecture!r}; use one of {', '.join(ARCHITECTURES)}")
        if self.jumprelu_sparsity not in JUMPRELU_SPARSITIES:
            raise ConfigError(
                f"unknown jumprelu_sparsity {self.jumprelu_sparsity!r}; use one of {', '.join(JUMPRELU_SPARSITIES)}"
            )
        for name in ("d_in", "d_sae", "k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.k > self.d_sae:
            raise ConfigError(f"k = {self.k} is more than the {self.d_sae} latents")


# -- text VAEs (models/vae.py) -------------------------------------------------------------------------

VARIANTS = ("rnn", "pretrained-encoder", "pretrained-decoder")
ANNEALING = ("none", "linear", "cyclical")
DECODING = ("greedy", "beam", "sample")
BEAM_WIDTH, TEMPERATURE = 5, 1.0  # decoding's defaults (steps.Decoding reads them)


@dataclass
class VAEConfig(SavedConfig):
    absent_in_old_checkpoints = {"skip": False}  # written before the skip connection existed
    retired_fields = ("anneal_steps",)  # a fixed ramp length; schedules now follow the run's length

    vocab: list[str] = option([], "the decoder's words, built from the training texts", derived=True)
    variant: str = option(
        "pretrained-encoder",
        "pretrained-encoder reads the dataset's stored MiniLM vectors into a GRU decoder; "
        "rnn learns its own GRU encoder; pretrained-decoder decodes with a frozen causal LM (Optimus-style)",
        choices=VARIANTS,
    )
    d_in: int = option(384, "sentence-embedding size, for the pretrained encoder", derived=True)
    latent_dim: int = option(32, "dimensions of z")
    embed_dim: int = option(256, "word-embedding size of the GRUs")
    # 256 wide and 32 words: on BBC News' 5,000 sentences, 5 minutes of training on 2 cores (measured)
    hidden: int = option(256, "GRU width (and encoder MLP width)")
    max_len: int = option(32, "words per sentence; longer ones are cut")
    beta: float = option(1.0, "KL weight")
    anneal: str = option(
        "linear", "KL weight schedule: none, linear ramp from 0, or cyclical ramps (Fu et al., 2019)", choices=ANNEALING
    )
    # Over the run's own length, so every run reaches its β whatever its steps (Fu et al. use 4 cycles, R = 0.5)
    anneal_share: float = option(0.5, "linear: share of the run over which β ramps up from 0 to its value")
    anneal_cycles: int = option(4, "cyclical: cycles over the run, β ramping over the first half of each")
    free_bits: float = option(0.5, "KL floor per latent dimension, in nats (Kingma et al., 2016)")
    word_dropout: float = option(0.0, "share of the decoder's input words hidden, so it must use z")
    dropout: float = option(0.0, "dropout on the decoder's input embeddings and GRU outputs, while training")
    # On by default: z also adds to the word logits (Dieng et al., 2019); reconstructions keep their key words
    skip: bool = option(True, "GRU decoder: a skip connection from z to the word logits")
    iw_samples: int = option(
        1,
        "train on the IWAE bound with K samples (1: the ELBO); for K > 1, β, its annealing and free bits do not apply",
    )
    decoder_lm: str = option("smollm2", "pretrained-decoder: the causal LM (a backbone name, folder or hub id)")
    lm_dim: int = option(0, "pretrained-decoder: that LM's hidden size", derived=True)
    prefix_len: int = option(4, "pretrained-decoder: prefix embeddings made from z")

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown VAE variant {self.variant!r}; use one of {', '.join(VARIANTS)}")
        if self.anneal not in ANNEALING:
            raise ConfigError(f"unknown annealing {self.anneal!r}; use one of {', '.join(ANNEALING)}")
        for name in ("word_dropout", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.anneal_share <= 1:
            raise ConfigError(f"anneal share must be in (0, 1], got {self.anneal_share}")
        for name in ("latent_dim", "embed_dim", "hidden", "max_len", "anneal_cycles", "iw_samples", "prefix_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


# -- vector quantisation (models/vq.py) ----------------------------------------------------------------

QUANTIZERS = ("vq", "vq-ema", "fsq", "rvq")


@dataclass
class VQConfig(SavedConfig):
    d_in: int = option(384, "input vector size", derived=True)  # set from the encoding or the LM
    groups: int = option(4, "codes per sentence (token-level models: 1)", flag="codes")
    d_code: int = option(32, "size of each quantised group (FSQ: the number of levels)")
    hidden: int = option(512, "width of the encoder and decoder MLPs")
    quantizer: str = option(
        "vq-ema",
        "vq: codebook loss + straight-through; vq-ema: EMA codebook; fsq: finite scalar; rvq: residual stages",
        choices=QUANTIZERS,
    )
    codebook_size: int = option(256, "K, codes in the codebook (vq, vq-ema, rvq)")
    levels: list[int] = option([8, 5, 5, 5], "FSQ values per dimension, e.g. 8,5,5,5 (codebook = their product)")
    stages: int = option(4, "residual VQ stages (rvq only)")
    commitment: float = option(0.25, "weight of the commitment loss")
    decay: float = option(0.99, "EMA decay of the codebook (vq-ema, rvq)")
    # On by default: without them a large share of K dies in the first steps (see README, Codebook).
    kmeans_init: bool = option(True, "initialise the codebook by k-means++ on the first batch")
    restart_dead: bool = option(True, "re-seed codes whose EMA usage falls below 3% of their fair share")
    rotation_trick: bool = option(False, "rotation-trick gradients instead of straight-through")
    cosine: bool = option(False, "cosine-similarity codebook")

    def __post_init__(self):
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"unknown quantizer {self.quantizer!r}; use one of {', '.join(QUANTIZERS)}")
        if self.quantizer == "fsq":
            self.d_code = len(self.levels)
        if self.quantizer == "rvq" and self.stages < 2:
            raise ConfigError(f"residual VQ needs at least 2 stages, got {self.stages}")
        for name in ("d_in", "groups", "d_code", "hidden", "codebook_size", "stages"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.decay < 1:
            raise ConfigError(f"decay must be in (0, 1), got {self.decay}")

    @property
    def stage_count(self) -> int:
        """Stages of codes each vector gets: `stages` for rvq, one for the others."""
        return self.stages if self.quantizer == "rvq" else 1

    @property
    def size(self) -> int:
        return math.prod(self.levels) if self.quantizer == "fsq" else self.codebook_size


# -- the training loop (train.py) ------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """The loop's settings. Each family's run spec (runs.py) states its own values; these
    defaults are the loop's, for tests and benchmarks that build a loop directly."""

    steps: int = option(2000, "optimiser steps")
    batch_size: int = option(256, "rows per step")
    lr: float = option(1e-3, "peak learning rate (linear warm-up, then cosine decay to a tenth)")
    warmup: int = option(100, "warm-up steps (at most a tenth of the steps)")
    eval_every: int = option(100, "steps between held-out evaluations (the curves)")
    checkpoint_every: int = option(500, "steps between checkpoints (a stopped run resumes from the last)")
    seed: int = option(42, "seed of the initialisation, the batches and the held-out split")

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
