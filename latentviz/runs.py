"""One run spec per model family: what to train on (dataset, backbone, layer, site), the model's
config and the training loop's config. Every default lives here or in the config dataclasses it
nests, each field with its help text; the CLI's `train vq|vae|sae` flags are generated from these
specs (their help states the default), the pages' forms read their defaults from a spec or a named
preset below, and the store keeps `asdict(run)` with each model and reads it back as the spec.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace

from latentviz import settings
from latentviz.errors import ConfigError
from latentviz.models.base import REGISTRY, option
from latentviz.models.sae import SAEConfig
from latentviz.models.vae import VAEConfig
from latentviz.models.vq import VQConfig
from latentviz.train import TrainConfig


@dataclass
class VQRun:
    """A discrete-latent model on a dataset's sentence vectors, or on a causal LM's token states."""

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

    dataset: str = option("", "the dataset to train on")
    # 4,000 words: the output softmax over them is most of a CPU training step
    vocab_size: int = option(4000, "words kept in the vocabulary (the rest are <unk>)")
    # 12 epochs of BBC News' 5,000 sentences: about 7 min on 2 cores with the diagnostics (measured)
    epochs: int = option(12, "passes over the training texts (90% of the dataset); sets the steps")
    # The default BBC run's held-out IW-NLL is lowest well before its last step (it overfits)
    keep_best: bool = option(
        True,
        "keep the weights with the lowest held-out IW-NLL (K = 5) among those trained at the chosen β, not the last",
    )
    model: VAEConfig = field(default_factory=VAEConfig)
    training: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=64, lr=6e-3))

    derived = ("training.steps",)  # set from epochs


@dataclass
class SAERun:
    """A sparse autoencoder on a causal LM's activations at one layer and site."""

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
    model: SAEConfig = field(default_factory=SAEConfig)
    # lr 8e-3: on SmolLM2 layer 8 with sinks masked, 3e-3 lost to SAELens's best (FVU 0.236 against
    # 0.210 at 100 steps); 8e-3 reaches 0.198 with 185 dead latents of 4,608, where 1.2e-2 gains a
    # little more for 764 dead (README, Defaults)
    training: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=4096, lr=8e-3))

    derived = ()


RUNS = {"vq": VQRun, "vae": VAERun, "sae": SAERun}

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
# The Features page's first SAE: 300 steps on 30,000 tokens take a few minutes on 2 CPU cores, where
# the full run takes about 25; enough to browse real features on a first visit.
SAE_QUICK = replace(SAERun(), max_tokens=30_000, training=replace(SAERun().training, steps=300))


# -- the command line, generated ----------------------------------------------------------------------


def _options(spec, prefix: str = ""):
    """(path, field, value, owner) of every option of a spec instance, nested configs included;
    `owner` is the dataclass instance that holds the field."""
    for f in fields(spec):
        value = getattr(spec, f.name)
        if is_dataclass(value):
            yield from _options(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value, spec


def _is_flag(run, path: str, f) -> bool:
    return "help" in f.metadata and not f.metadata["derived"] and path not in type(run).derived


def _flag(f) -> str:
    return (f.metadata["flag"] or f.name).replace("_", "-")


def _dest(path: str) -> str:
    return path.replace(".", "__")


def add_flags(
    parser: argparse.ArgumentParser, run, only: tuple[str, ...] | None = None, required: tuple[str, ...] = ()
) -> None:
    """A flag for every option of `run` (a spec instance: its values are the defaults), or for the
    paths in `only`; those in `required` must be given. Booleans get --name / --no-name; lists are
    comma-separated."""
    for path, f, value, owner in _options(run):
        if not _is_flag(run, path, f) or (only is not None and path not in only):
            continue
        kind = typing.get_type_hints(type(owner))[f.name]
        kwargs = {
            "dest": _dest(path),
            "metavar": _flag(f).upper().replace("-", "_"),
            "help": f.metadata["help"].replace("%", "%%"),  # argparse %-formats help texts
        }
        if kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=value, metavar=None)
        elif isinstance(value, list):
            kwargs.update(default=",".join(map(str, value)), metavar="N,N,...")
        else:
            scalar = next(t for t in typing.get_args(kind) or (kind,) if t is not type(None))  # int | None: int
            kwargs.update(type=scalar, default=value)
        if f.metadata["choices"]:
            kwargs.update(choices=list(f.metadata["choices"]), metavar=None)
        if path in required:
            kwargs.update(required=True, default=None)
        parser.add_argument("--" + _flag(f), **kwargs)


def from_flags(run, args: argparse.Namespace):
    """`run` with the values of the parsed flags (those that add_flags made)."""
    changes: dict[str, dict] = {}
    for path, f, value, _ in _options(run):
        if not hasattr(args, _dest(path)):
            continue
        given = getattr(args, _dest(path))
        if isinstance(value, list):
            try:
                given = [int(part) for part in str(given).split(",")]
            except ValueError:
                raise ConfigError(
                    f"--{_flag(f)} takes integers separated by commas, e.g. 8,5,5,5; got {given!r}"
                ) from None
        *parents, name = path.split(".")
        changes.setdefault(".".join(parents), {})[name] = given
    nested = {part: replace(getattr(run, part), **values) for part, values in changes.items() if part}
    return replace(run, **changes.get("", {}), **nested)


def defaults(run) -> dict[str, object]:
    """path → default of every flag of a spec instance (for the agreement tests and the docs)."""
    return {path: value for path, f, value, _ in _options(run) if _is_flag(run, path, f)}


# -- stored with each model ---------------------------------------------------------------------------


def to_record(run, **data) -> dict:
    """What the store keeps with a model: the whole spec, and `data`, facts found while training
    (e.g. the capture an SAE was trained on)."""
    return {**asdict(run), "data": data}


def facts(row: dict) -> dict:
    """The facts a model's run found while training (see to_record), e.g. {"capture": 3}."""
    return row["config"].get("data", {})


def from_record(row: dict):
    """The run spec of a stored model row (see Store.model). Records written before run specs
    (model, training and a `data` dict of the run's other settings) load too."""
    kind, record = row["kind"], row["config"]
    run_class, model_class = RUNS[kind], REGISTRY[kind]
    model = model_class.config_from(record["model"])
    training = TrainConfig(**record["training"]) if "training" in record else run_class().training
    if "dataset" in record:
        known = {f.name for f in fields(run_class)} - {"model", "training"}
        return run_class(**{k: v for k, v in record.items() if k in known}, model=model, training=training)
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
