"""The SAELens on-disk layout (`cfg.json` + `sae_weights.safetensors`), read and written, so SAEs
trained elsewhere open in latentviz and ours open elsewhere. Reading parses JSON and safetensors
only: nothing is ever unpickled.

Tensors: W_enc (d_in, d_sae), W_dec (d_sae, d_in), b_enc (d_sae), b_dec (d_in) and, for JumpReLU,
threshold (d_sae). A BatchTopK SAE is written as JumpReLU with its inference threshold, which is
what it computes per token; an input scale is folded into the weights, so the files need none.

Hook names follow TransformerLens, whose blocks count from 0: our layer L (the output of block L,
hidden_states[L]) is `blocks.{L-1}.hook_resid_post`, or `blocks.{L-1}.hook_mlp_out` / `hook_attn_out`
for the sublayer sites; `blocks.{i}.hook_resid_pre`, the input of block i, is our layer i.

cfg.json layouts read: SAELens ≥ 6 keeps `hook_name` and `model_name` under `metadata` (inference
folders from `save_inference_model` and trainer checkpoints from `save_model` alike); older versions
kept them at the top level (`hook_point` before that). A trainer checkpoint of a TopK or BatchTopK
SAE has `rescale_acts_by_decoder_norm`: its decoder rows are not unit norm and the norms enter the
top-k choice, so they are folded into the encoder on import, as SAELens does when it saves for inference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentviz import backbones
from latentviz.configs import SAEConfig
from latentviz.constants import CONFIG_FILE
from latentviz.constants import SAELENS_WEIGHTS_FILE as WEIGHTS_FILE
from latentviz.models.base import CheckpointError, read_config
from latentviz.models.sae import SparseAutoencoder

SAE_LENS_VERSION = "6.0.0"  # the layout written: SAELens reads a cfg without a version as pre-6
ARCHITECTURES = {
    "standard": "standard",
    "relu": "standard",
    "topk": "topk",
    "jumprelu": "jumprelu",
    "batchtopk": "batchtopk",
}
HOOK = re.compile(r"blocks\.(\d+)\.hook_(resid_pre|resid_post|mlp_out|attn_out)")
# SAELens folders carry these; the others are applied at run time per token, which latentviz does not do
NORMALIZATIONS = ("none", "expected_average_only_in")  # the second: one factor, our input scale
ACTIVATION_SCALER_FILE = "activation_scaler.json"  # a SAELens trainer checkpoint's normalisation factor
GEMMA_SCOPE_FILE = "params.npz"


def hook_name(layer: int, site: str) -> str:
    """The TransformerLens hook name of our (layer, site)."""
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_{site}"


def layer_and_site(name: str, where: Path) -> tuple[int, str]:
    """Our (layer, site) from a TransformerLens hook name."""
    match = HOOK.fullmatch(str(name))
    if match is None:
        raise CheckpointError(
            f"{where}: hook {name!r} is not one latentviz can read; it reads "
            "blocks.N.hook_resid_pre, hook_resid_post, hook_mlp_out and hook_attn_out"
        )
    block, site = int(match[1]), match[2]
    return (block, "resid_post") if site == "resid_pre" else (block + 1, site)


@dataclass
class Reading:
    """Where an imported SAE reads, and where each part of that was found (shown to the user)."""

    layer: int
    site: str
    backbone: str
    layer_from: str
    backbone_from: str
    prepend_bos: bool = True  # SAELens's default when a cfg does not say

    def __str__(self) -> str:
        return f"layer {self.layer} {self.site} of {self.backbone}, from {self.layer_from} and {self.backbone_from}"


def _found(cfg: dict, key: str) -> tuple[object, str] | None:
    """(value, where) of a key under `metadata` (SAELens ≥ 6) or at the top level (older)."""
    metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    for value, where in ((metadata.get(key), f"metadata.{key}"), (cfg.get(key), key)):
        if value not in (None, ""):
            return value, where
    return None


def reading(cfg: dict, where: Path, layer: int | None = None, site: str | None = None, backbone: str | None = None):
    """Where the SAE reads: from the cfg's hook name, or from the flags for what the cfg does not say.
    A flag that contradicts the cfg, or a hook the cfg does not name and no flag gives, is refused."""
    hook = _found(cfg, "hook_name") or _found(cfg, "hook_point")
    if hook is not None:
        found_layer, found_site = layer_and_site(hook[0], where)
        for flag, given, found in (("--layer", layer, found_layer), ("--site", site, found_site)):
            if given is not None and given != found:
                raise CheckpointError(
                    f"{where}: {hook[1]} {hook[0]} means {flag[2:]} {found}, but {flag} {given} was given"
                )
        layer, site, layer_from = found_layer, found_site, f"{hook[1]} {hook[0]}"
    elif layer is None:
        raise CheckpointError(f"{where}: names no hook (hook_name); add --layer L (and --site S) to say where it reads")
    else:
        site, layer_from = site or "resid_post", "--layer" + (" and --site" if site else "")
    model = _found(cfg, "model_name")
    if backbone is not None:
        backbone_from = "--backbone"
    elif model is not None:
        backbone, backbone_from = backbones.local_name(str(model[0])), f"{model[1]} {model[0]}"
    else:
        raise CheckpointError(f"{where}: names no model (model_name); add --backbone B to say which LM it reads")
    prepend_bos = _found(cfg, "prepend_bos")
    return Reading(layer, site, backbone, layer_from, backbone_from, prepend_bos is None or bool(prepend_bos[0]))


def export(sae: SparseAutoencoder, folder: str | Path, *, prepend_bos: bool) -> Path:
    """Write `sae` in SAELens 6's inference layout; `prepend_bos`: whether its LM ran with a BOS first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config, scale = sae.config, float(sae.input_scale)
    # Ours: f = act((x·s − b_dec) W_enc + b_enc), x̂ = (f W_dec + b_dec) / s. SAELens: no s.
    tensors = {
        "W_enc": sae.W_enc.detach() * scale,
        "W_dec": sae.W_dec.detach() / scale,
        "b_enc": sae.b_enc.detach(),
        "b_dec": sae.b_dec.detach() / scale,
    }
    architecture = config.architecture
    if architecture in ("jumprelu", "batchtopk"):
        tensors["threshold"] = sae.jump_threshold().detach()
        architecture = "jumprelu"
    cfg = {
        "architecture": architecture,
        "d_in": config.d_in,
        "d_sae": config.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAE_LENS_VERSION,
            "sae_lens_training_version": None,
            "model_name": backbones.hub_name(config.model_name),
            "hook_name": hook_name(config.layer, config.site),
            "hook_head_index": None,
            "prepend_bos": prepend_bos,
            "context_size": backbones.MAX_TOKENS,
            "trained_with": "latentviz",
        },
    }
    if architecture == "topk":
        cfg["k"] = config.k
        cfg["rescale_acts_by_decoder_norm"] = False  # our decoder rows are unit norm already
    save_file({name: t.float().cpu().contiguous() for name, t in tensors.items()}, folder / WEIGHTS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))
    return folder


HUB_PREFIX = "hf:"
RELEASE_PREFIX = "saelens:"
REGISTRY_FILE = "pretrained_saes.yaml"  # SAELens's registry of released SAEs, inside its package
# a release's conversion_func: how SAELens reads its files; the ones latentviz reads the same way
READABLE_CONVERSIONS = {None: "SAELens's own layout", "gemma_2": "Gemma Scope's params.npz"}
OVERRIDES_READ = ("hook_name", "model_name", "normalize_activations", "model_from_pretrained_kwargs")
OVERRIDES_IGNORED = ("dataset_path",)  # where it was trained: nothing that changes what it computes


@dataclass(frozen=True)
class Release:
    """A SAELens release's SAE as its registry gives it: the files (`hf:REPO/PATH`), the config fields
    the registry sets over the folder's own (SAELens merges them at load), and the normalisation factor."""

    files: str
    overrides: dict
    norm_scaling_factor: float | None
    reads: dict  # layer, site, backbone for files that do not say (Gemma Scope's), from the release's names


def registry() -> dict:
    """SAELens's registry (pretrained_saes.yaml), read in place from an installed sae-lens package
    without importing it: release names are SAELens's, so its own list resolves them."""
    import importlib.util

    import yaml

    found = importlib.util.find_spec("sae_lens")
    if found is None or not found.submodule_search_locations:
        raise CheckpointError(
            "SAELens release names are read from its registry: `pip install --no-deps sae-lens` to read them, "
            "or give the files as hf:OWNER/REPO/PATH (the release's page names its repository)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / REGISTRY_FILE
    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"{path}: SAELens's registry cannot be read ({error})") from None


def release(name: str) -> Release:
    """`saelens:RELEASE/SAE_ID` (as SAELens's SAE.from_pretrained(RELEASE, SAE_ID) names it) resolved
    through SAELens's registry; a release it cannot compute the same way is refused in one line."""
    import difflib

    given = name[len(RELEASE_PREFIX) :].strip("/")
    release_name, _, sae_id = given.partition("/")
    if not sae_id:
        raise CheckpointError(
            f"{name}: write saelens:RELEASE/SAE_ID, e.g. saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre"
        )
    releases = registry()
    entry = releases.get(release_name)
    if entry is None:
        near = difflib.get_close_matches(release_name, list(releases), n=3)
        raise CheckpointError(
            f"{name}: SAELens's registry has no release {release_name!r}"
            + (f"; did you mean {', '.join(near)}?" if near else "")
        )
    saes = {sae["id"]: sae for sae in entry.get("saes", [])}
    if sae_id not in saes:
        near = difflib.get_close_matches(sae_id, list(saes), n=3)
        raise CheckpointError(
            f"{name}: release {release_name} has no SAE {sae_id!r}"
            + (f"; did you mean {', '.join(near)}?" if near else "")
        )
    conversion = entry.get("conversion_func")
    if conversion not in READABLE_CONVERSIONS:
        raise CheckpointError(
            f"{name}: SAELens converts this release's files with {conversion}, which latentviz does not read; "
            f"it reads releases in {' and '.join(READABLE_CONVERSIONS.values())}"
        )
    overrides = dict(entry.get("config_overrides") or {})
    unknown = set(overrides) - set(OVERRIDES_READ) - set(OVERRIDES_IGNORED)
    if unknown:
        raise CheckpointError(
            f"{name}: the registry sets {', '.join(sorted(unknown))} for it, which latentviz does not apply"
        )
    for ignored in OVERRIDES_IGNORED:
        overrides.pop(ignored, None)
    _check_not_centred(overrides, name)  # before anything is downloaded for it
    chosen = saes[sae_id]
    reads = _gemma_scope_reads(name, entry, chosen["path"]) if conversion == "gemma_2" else {}
    files = f"{HUB_PREFIX}{entry['repo_id']}/{chosen['path']}"
    return Release(files, overrides, chosen.get("norm_scaling_factor"), reads)


def _gemma_scope_reads(name: str, entry: dict, path: str) -> dict:
    """Where a Gemma Scope release's SAE reads, as SAELens's gemma_2 conversion derives it: the
    repository names the site (res, mlp, att), the folder layer_N TransformerLens's blocks.N."""
    kind = re.search(r"-(res|mlp|att)\b", entry["repo_id"])
    layer = re.match(r"layer_(\d+)/", path)
    if kind is None or layer is None:
        raise CheckpointError(f"{name}: cannot tell the site and layer from {entry['repo_id']}/{path}")
    if kind.group(1) == "att":
        raise CheckpointError(
            f"{name}: Gemma Scope's attention SAEs read hook_z (each head's output before W_O), which latentviz "
            "does not capture; its residual and MLP SAEs import"
        )
    site = {"res": "resid_post", "mlp": "mlp_out"}[kind.group(1)]
    return {"layer": int(layer.group(1)) + 1, "site": site, "backbone": f"google/{entry['model']}"}


def locate(path: str) -> Path:
    """A local path as given, or `hf:OWNER/REPO/PATH` (a SAELens release's repository and SAE id, or a
    Gemma Scope repository and its params.npz folder) found in the local Hugging Face cache: nothing is
    downloaded, so the app stays offline; a missing one is refused saying how to fetch it."""
    if not path.startswith(HUB_PREFIX):
        return Path(path)
    parts = path[len(HUB_PREFIX) :].strip("/").split("/")
    if len(parts) < 3:
        raise CheckpointError(f"{path}: write hf:OWNER/REPO/PATH, e.g. hf:google/gemma-scope-2b-pt-res/layer_12/...")
    repo, inside = "/".join(parts[:2]), "/".join(parts[2:])
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        root = Path(snapshot_download(repo, allow_patterns=[f"{inside}/*", inside], local_files_only=True))
    except LocalEntryNotFoundError:
        root = None
    if root is None or not (root / inside).exists():
        raise CheckpointError(
            f"{path}: not in the local Hugging Face cache; on a machine online run "
            f"`huggingface-cli download {repo} --include '{inside}/*'`, then import again"
        )
    return root / inside


def read(
    folder: str | Path,
    d_in: int | None = None,
    *,
    layer: int | None = None,
    site: str | None = None,
    backbone: str | None = None,
    norm_scaling_factor: float | None = None,
) -> tuple[SparseAutoencoder, Reading]:
    """An SAE from a SAELens folder (inference folder or trainer checkpoint, SAELens 6 or older) or a
    Gemma Scope `params.npz`, and where it reads; `d_in`, when given, must match (the layer's width).
    `folder` may name one in the local Hugging Face cache (`hf:OWNER/REPO/PATH`: see locate), or a
    SAELens release's SAE (`saelens:RELEASE/SAE_ID`: see release), read as SAELens loads it."""
    overrides = {}
    if str(folder).startswith(RELEASE_PREFIX):
        found = release(str(folder))
        folder, overrides = found.files, found.overrides
        norm_scaling_factor = norm_scaling_factor if norm_scaling_factor is not None else found.norm_scaling_factor
        layer = layer if layer is not None else found.reads.get("layer")
        site = site or found.reads.get("site")
        backbone = backbone or found.reads.get("backbone")
    folder = locate(str(folder))
    if folder.name == GEMMA_SCOPE_FILE or (folder / GEMMA_SCOPE_FILE).exists():
        return _read_gemma_scope(folder, d_in, layer, site, backbone)
    cfg = _overridden(read_config(folder, "a SAELens SAE"), overrides)
    where = folder / CONFIG_FILE
    _check_not_centred(cfg, where)
    for name in ("d_in", "d_sae"):
        if not isinstance(cfg.get(name), int):
            raise CheckpointError(f"{where}: needs an integer {name}")
    _check_width(folder, cfg["d_in"], d_in)
    architecture, k = _architecture(cfg, where)
    scale = _scaling_factor(cfg, folder, norm_scaling_factor)
    where_it_reads = reading(cfg, where, layer, site, backbone)
    try:
        tensors = load_file(folder / WEIGHTS_FILE)
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}") from None
    except SafetensorError as error:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({error})") from None
    if architecture == "jumprelu" and "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = tensors.pop("log_threshold").exp()  # older SAELens JumpReLU checkpoints
    if architecture == "batchtopk" and "topk_threshold" in tensors:  # a trainer checkpoint: one scalar threshold
        tensors["threshold"] = tensors.pop("topk_threshold").expand(cfg["d_sae"]).clone()
    if cfg.get("rescale_acts_by_decoder_norm"):
        # SAELens scales pre-activations by ‖W_dec row‖ and divides them out again before decoding;
        # folding the norms into W_enc and b_enc gives unit rows and the same latents and output.
        norms = tensors["W_dec"].float().norm(dim=1).clamp(min=1e-8)
        tensors["W_dec"] = tensors["W_dec"] / norms[:, None]
        tensors["W_enc"] = tensors["W_enc"] * norms[None, :]
        tensors["b_enc"] = tensors["b_enc"] * norms
    config = SAEConfig(
        d_in=cfg["d_in"],
        d_sae=cfg["d_sae"],
        architecture=architecture,
        k=k,
        layer=where_it_reads.layer,
        site=where_it_reads.site,
        model_name=where_it_reads.backbone,
    )
    sae = _built(config, tensors, folder / WEIGHTS_FILE, cfg.get("apply_b_dec_to_input", True), scale)
    return sae, where_it_reads


def _overridden(cfg: dict, overrides: dict) -> dict:
    """The folder's cfg with a registry's fields set over it, where SAELens 6 keeps them (under
    metadata) and where older versions did (the top level)."""
    cfg = dict(cfg)
    metadata = dict(cfg["metadata"]) if isinstance(cfg.get("metadata"), dict) else None
    for key, value in overrides.items():
        cfg[key] = value
        if metadata is not None:
            metadata[key] = value
    if metadata is not None:
        cfg["metadata"] = metadata
    return cfg


def _check_not_centred(cfg: dict, where: Path | str) -> None:
    """An SAE trained on TransformerLens's centred residual stream (center_writing_weights: every write
    has its mean over d_model removed) reads activations that differ from the model's own; latentviz
    captures the model's own, so it is refused rather than read at the wrong point."""
    kwargs = _found(cfg, "model_from_pretrained_kwargs")
    if kwargs is not None and isinstance(kwargs[0], dict) and kwargs[0].get("center_writing_weights"):
        raise CheckpointError(
            f"{where}: trained on TransformerLens's centred residual stream ({kwargs[1]} center_writing_weights), "
            "which latentviz does not reproduce; its latents would be read from the wrong activations"
        )


def _check_width(folder: Path, found: int, wanted: int | None) -> None:
    if wanted is not None and found != wanted:
        raise CheckpointError(
            f"{folder}: this SAE reads {found}-wide activations, but the chosen layer is {wanted} wide"
        )


def _architecture(cfg: dict, where: Path) -> tuple[str, int]:
    """(our architecture, k) from a cfg of any SAELens version. Before 6, a TopK SAE was a
    "standard" one with `activation_fn_str: "topk"` and its k in `activation_fn_kwargs`."""
    activation = cfg.get("activation_fn") or cfg.get("activation_fn_str") or "relu"
    kwargs = cfg.get("activation_fn_kwargs") if isinstance(cfg.get("activation_fn_kwargs"), dict) else {}
    name = str(cfg.get("architecture", "standard")).lower()
    if name == "standard" and activation == "topk":
        name = "topk"
    architecture = ARCHITECTURES.get(name)
    if architecture is None:
        raise CheckpointError(
            f"{where}: architecture {cfg.get('architecture')!r} is not supported; "
            f"use one of {', '.join(sorted(set(ARCHITECTURES)))}"
        )
    if architecture == "standard" and activation != "relu":
        raise CheckpointError(f"{where}: activation {activation!r} is not supported; latentviz reads relu and topk")
    return architecture, int(cfg.get("k") or kwargs.get("k") or 1)


def _scaling_factor(cfg: dict, folder: Path, given: float | None) -> float:
    """The factor SAELens multiplies activations by before this SAE (`normalize_activations:
    expected_average_only_in`): given, or from a trainer checkpoint's activation_scaler.json. SAELens
    keeps the factors of its registry's releases in its own pretrained_saes.yaml, not in the folder."""
    normalization = cfg.get("normalize_activations") or "none"
    if normalization is False or normalization is True:  # pre-6 booleans
        normalization = "expected_average_only_in" if normalization else "none"
    if normalization not in NORMALIZATIONS:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: normalize_activations {normalization!r} rescales each token at run time, "
            f"which latentviz does not do; it reads {' and '.join(NORMALIZATIONS)}"
        )
    if normalization == "none":
        if given is not None:
            raise CheckpointError(f"{folder}: its activations are not normalised; leave out --norm-scaling-factor")
        return 1.0
    scaler = folder / ACTIVATION_SCALER_FILE
    if given is None and scaler.exists():
        try:
            given = json.loads(scaler.read_text())["scaling_factor"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise CheckpointError(f"{scaler}: needs a scaling_factor") from None
    if not isinstance(given, (int, float)) or not given > 0:
        raise CheckpointError(
            f"{folder}: reads activations scaled by a factor it does not hold (normalize_activations "
            "expected_average_only_in); pass --norm-scaling-factor F (SAELens's pretrained_saes.yaml lists it)"
        )
    return float(given)


def _built(config: SAEConfig, tensors: dict, where: Path, b_dec_on_input: bool, scale: float) -> SparseAutoencoder:
    """The SAE from SAELens-named tensors, checked against the config's shapes."""
    d_in, d_sae = config.d_in, config.d_sae
    shapes = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,)}
    if config.architecture in ("jumprelu", "batchtopk"):
        shapes["threshold"] = (d_sae,)
    for name, shape in shapes.items():
        if name not in tensors:
            raise CheckpointError(f"{where}: missing tensor {name}")
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{where}: {name} is {tuple(tensors[name].shape)}, the config implies {shape}")
    state = {name: torch.as_tensor(tensors[name]).float() for name in shapes}
    if not b_dec_on_input:  # their pre-activation is x W_enc + b_enc: fold b_dec in
        state["b_enc"] = state["b_enc"] + state["b_dec"] @ state["W_enc"]
    sae = SparseAutoencoder(config)
    with torch.no_grad():
        for name, tensor in state.items():
            getattr(sae, name).copy_(tensor)
        # SAELens multiplies the input by the factor and divides the output by it: our input scale
        sae.input_scale.fill_(scale)
        sae.initialised.fill_(True)
    return sae.eval()


def _read_gemma_scope(
    path: Path, d_in: int | None, layer: int | None, site: str | None, backbone: str | None
) -> tuple[SparseAutoencoder, Reading]:
    """Gemma Scope's own `params.npz` (a JumpReLU SAE whose pre-activation is x W_enc + b_enc). It
    says nothing of where it reads: its folder's layer_N is TransformerLens's blocks.N, our layer N + 1."""
    import numpy as np

    path = path if path.name == GEMMA_SCOPE_FILE else path / GEMMA_SCOPE_FILE
    if layer is None or backbone is None:
        raise CheckpointError(
            f"{path}: Gemma Scope files name no hook or model; add --layer L (layer_N is our N + 1), "
            "--site S and --backbone B (for example google/gemma-2-2b)"
        )
    try:
        with np.load(path, allow_pickle=False) as found:
            tensors = {name: torch.from_numpy(np.asarray(found[name], np.float32)) for name in found.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable .npz file ({error})") from None
    if "W_enc" not in tensors or tensors["W_enc"].ndim != 2:
        raise CheckpointError(f"{path}: missing tensor W_enc")
    width, d_sae = tensors["W_enc"].shape
    _check_width(path, width, d_in)
    layer_from = "--layer" + (" and --site" if site else "")
    site = site or "resid_post"
    config = SAEConfig(
        d_in=width, d_sae=d_sae, architecture="jumprelu", k=1, layer=layer, site=site, model_name=backbone
    )
    sae = _built(config, tensors, path, b_dec_on_input=False, scale=1.0)
    return sae, Reading(layer, site, backbone, layer_from, "--backbone")
