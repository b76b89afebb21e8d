"""One run spec per model family: what to train on (dataset, backbone, layer, site), the model's
config and the training loop's config. Every default lives here or in the config dataclasses it nests
(configs.py), each field with its help text; the CLI's `train vq|vae|sae` flags are generated from these
specs (flags.py; their help states the default), the pages' forms read their defaults from a spec or
a named preset below, and the store keeps `asdict(run)` with each model and reads it back as the spec.
FAMILIES registers each family once: its spec, model class, training module and jobs.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from latentviz import settings
from latentviz.configs import SAEConfig, TrainConfig, VAEConfig, VQConfig
from latentviz.flags import option


@dataclass
class VQRun:
    """A discrete-latent model on a dataset's sentence vectors, or on a causal LM's token states."""

    kind: ClassVar[str] = "vq"
    dataset: str = option("", "the dataset to train on")
    backbone: str = option(
        settings.DEFAULT_BACKBONE,
        "whose stored sentence encoding to train on (with --tokens: whose hidden states to capture)",
    )
    tokens: bool = option(False, "quantise each token's hidden state (one code per token) instead of sentence vectors")
    layer: int | None = option(None, "with --tokens: the block whose output is captured (none: the middle one)")
    max_tokens: int = option(100_000, "with --tokens: token vectors to capture")
    model: VQConfig = field(default_factory=VQConfig)
    training: TrainConfig = field(default_factory=TrainConfig)  # the loop's own defaults were tuned on sentence VQ

    derived = ()  # option paths that get no flag; see VAERun


@dataclass
class VAERun:
    """A text VAE on a dataset (the pretrained-encoder variants read its stored MiniLM vectors)."""

    kind: ClassVar[str] = "vae"
    dataset: str = option("", "the dataset to train on")
    # 4,000 words: the output softmax over them is most of a CPU training step
    vocab_size: int = option(4000, "words kept in the vocabulary (the rest are <unk>)")
    # 12 epochs of BBC News' 5,000 sentences: about 7 min on 2 cores with the diagnostics (measured)
    epochs: int = option(12, "passes over the training texts (80% of the dataset); sets the steps")
    # The default BBC run's validation IW-NLL is lowest well before its last step (it overfits)
    keep_best: bool = option(
        True,
        "keep the weights with the lowest validation IW-NLL (K = 5) among those trained at the chosen β, not the "
        "last; the figures reported are on held-out texts that chose nothing",
    )
    model: VAEConfig = field(default_factory=VAEConfig)
    training: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=64, lr=6e-3))

    derived = ("training.steps",)  # set from epochs


# An SAE's rate falls as 1/√latents (Gao et al. 2024 fit the best rate against width; EleutherAI's
# sparsify defaults to 2e-4 / √(latents / 2¹⁴)), anchored where it was chosen: 8e-3 at 4,608 latents
# (SmolLM2 layer 8, inputs normalised; docs/defaults.md). At 2,048 latents (synthetic activations)
# it gives 1.2e-2, where 8e-3 had lost 3-6% FVU to a swept 2e-2 (docs/benchmarks.md).
SAE_LR, SAE_LR_LATENTS = 8e-3, 4608


@dataclass
class SAETraining(TrainConfig):
    """The SAE loop's settings: as every family's, but the rate follows the width unless given."""

    lr: float | None = option(
        None, f"peak learning rate (default: {SAE_LR:g} × √({SAE_LR_LATENTS:,} / width); warm-up, then cosine decay)"
    )


def sae_lr(run: SAERun) -> float:
    """The run's peak learning rate: as given, or from its width (SAE_LR)."""
    return run.training.lr or SAE_LR * (SAE_LR_LATENTS / run.model.d_sae) ** 0.5


@dataclass
class SAERun:
    """A sparse autoencoder on a causal LM's activations at one layer and site."""

    kind: ClassVar[str] = "sae"
    dataset: str = option("", "the dataset whose texts are run through the LM")
    backbone: str = option(settings.DEFAULT_DECODER_LM, "the causal LM: smollm2, a folder or a hub id")
    # Layer 8 of SmolLM2's 30: where the README's runs and benchmarks read
    layer: int = option(8, "block whose output is read (1-based)")
    site: str = option(
        "resid_post", "the block's output, or its MLP or attention output", choices=tuple(settings.SITES)
    )
    max_tokens: int = option(100_000, "tokens to capture; 90% of the texts train, 10% are held out")
    keep_sinks: bool = option(
        False, "keep attention sinks, positions whose norm is over 4× the median (masked otherwise)"
    )
    # SAELens runs most models with a BOS first (GPT-2's tokenizer adds none): an SAE trained so reads
    # later positions as they were then. BOS itself, a special token, is never trained on or spliced.
    prepend_bos: bool | None = option(
        None, "a BOS token before every text (--prepend-bos) or none (--no-prepend-bos); default: as the tokenizer does"
    )
    model: SAEConfig = field(default_factory=SAEConfig)
    # the rate from the width (sae_lr): at 4,608 latents 8e-3, which on SmolLM2 layer 8 with sinks
    # masked beat 3e-3 (FVU 0.198 against 0.236 at 100 steps; SAELens's best 0.210) with 185 dead
    # latents, where 1.2e-2 gains a little more for 764 dead (docs/defaults.md)
    training: SAETraining = field(default_factory=lambda: SAETraining(batch_size=4096))

    derived = ()


@dataclass(frozen=True)
class Family:
    """A model family, registered once: its run spec, its model class (models/, registered by kind so
    a checkpoint reloads from its cfg.json), its training orchestration (fit/) and its two jobs."""

    run: type
    help: str  # one line, for `latentviz train --help`

    @property
    def kind(self) -> str:
        return self.run.kind

    @property
    def model(self) -> type:
        """models.<kind>'s model class (imported on use: it loads torch, which the map's pages never need)."""
        from latentviz.models import REGISTRY

        return REGISTRY[self.kind]

    @property
    def fit(self):
        """fit.<kind>: train, resume, curves, held-out figures (imported on use: fit/ imports this module)."""
        return importlib.import_module(f"latentviz.fit.{self.kind}")

    @property
    def train_job(self) -> str:
        return f"train {self.kind}"

    @property
    def resume_job(self) -> str:
        return f"resume {self.kind}"

    @property
    def jobs(self) -> tuple[str, str]:
        return self.train_job, self.resume_job


FAMILIES = {
    family.kind: family
    for family in (
        Family(VQRun, "VQ model: sentence embedding (or token state) → discrete codes → embedding"),
        Family(VAERun, "text VAE: sentence → Gaussian latent → words"),
        Family(SAERun, "sparse autoencoder on a causal LM's layer activations"),
    )
}

# -- presets: named variations, each with its reason --------------------------------------------------

# Token-level VQ: a causal LM's hidden states (sentence encoders have no next-token structure to
# show), at the layer the SAEs read, one code per token.
VQ_TOKENS = replace(
    VQRun(),
    tokens=True,
    backbone=settings.DEFAULT_DECODER_LM,
    layer=SAERun().layer,
    model=replace(VQRun().model, groups=1),
)
# The pretrained-decoder VAE runs a frozen 135M-parameter LM at every step: one epoch is already
# slow on a CPU.
VAE_LM_DECODER = replace(VAERun(), epochs=1, model=replace(VAERun().model, variant="pretrained-decoder"))
# The Features page's first SAE: 300 steps on 30,000 tokens, about 6 minutes on 2 CPU cores with its
# dashboards and SmolLM2's first conversion (bench/first_hour.py), where the full run takes about 50
# on one torch thread; enough to browse real features on a first visit.
SAE_QUICK = replace(SAERun(), max_tokens=30_000, training=replace(SAERun().training, steps=300))


# -- stored with each model ---------------------------------------------------------------------------


def help_of(spec, name: str) -> str:
    """The help text a spec's field was given (its CLI flag's words), for a page's widget to show."""
    return next(f.metadata["help"] for f in fields(spec) if f.name == name)


def to_record(run, **data) -> dict:
    """What the store keeps with a model: the whole spec, and `data`, facts found while training
    (e.g. the capture an SAE was trained on)."""
    return {**asdict(run), "data": data}


def facts(row: dict) -> dict:
    """The facts a model's run found while training (see to_record), e.g. {"capture": 3}."""
    return row["config"].get("data", {})


def to_dict(run) -> dict:
    """A run spec as plain JSON-ready values, its family's kind included: how a spec travels to the worker."""
    return {"kind": run.kind, **asdict(run)}


def from_dict(values: dict):
    """The run spec `to_dict` (or a stored record, with "kind" added) describes; keys that are not the
    spec's own (a record's `data`) are ignored."""
    family = FAMILIES[values["kind"]]
    known = {f.name for f in fields(family.run)} - {"model", "training"}
    return family.run(
        **{k: v for k, v in values.items() if k in known},
        model=type(family.run().model).from_saved(values["model"]),
        training=type(family.run().training)(**values["training"]),
    )


def from_record(row: dict):
    """The run spec of a stored model row (see Store.model). Records written before run specs
    (model, training and a `data` dict of the run's other settings) load too."""
    kind, record = row["kind"], row["config"]
    if "dataset" in record:
        return from_dict({**record, "kind": kind})
    family = FAMILIES[kind]
    model = type(family.run().model).from_saved(record["model"])
    default = family.run().training
    training = type(default)(**record["training"]) if "training" in record else default
    old = facts(row)
    if kind == "vq":
        return VQRun(
            dataset=row["dataset"],
            backbone=row["backbone"],
            tokens=old.get("unit") == "token",
            layer=old.get("layer"),
            max_tokens=old.get("max_tokens", VQRun().max_tokens),
            model=model,
            training=training,
        )
    if kind == "vae":
        return VAERun(
            dataset=row["dataset"],
            vocab_size=old.get("vocab_size", VAERun().vocab_size),
            model=model,
            training=training,
        )
    return SAERun(
        dataset=row["dataset"],
        backbone=model.model_name,
        layer=model.layer,
        site=model.site,
        model=model,
        training=training,
    )
