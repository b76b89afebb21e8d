"""The SAELens on-disk layout (`cfg.json` + `sae_weights.safetensors`), read and written, so SAEs
trained elsewhere open in latentviz and ours open elsewhere. Reading parses JSON and safetensors
only: nothing is ever unpickled.

Tensors: W_enc (d_in, d_sae), W_dec (d_sae, d_in), b_enc (d_sae), b_dec (d_in) and, for JumpReLU,
threshold (d_sae). A BatchTopK SAE is written as JumpReLU with its inference threshold, which is
what it computes per token; an input scale is folded into the weights, so the files need none.

Hook names follow TransformerLens, whose blocks count from 0: our layer L (the output of block L,
hidden_states[L]) is `blocks.{L-1}.hook_resid_post`, or `blocks.{L-1}.hook_mlp_out` / `hook_attn_out`
for the sublayer sites; `blocks.{i}.hook_resid_pre`, the input of block i, is our layer i.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentviz.models.base import CONFIG_FILE, CheckpointError, read_config
from latentviz.models.sae import SAEConfig, SparseAutoencoder

WEIGHTS_FILE = "sae_weights.safetensors"
ARCHITECTURES = {
    "standard": "standard",
    "relu": "standard",
    "topk": "topk",
    "jumprelu": "jumprelu",
    "batchtopk": "batchtopk",
}
HOOK = re.compile(r"blocks\.(\d+)\.hook_(resid_pre|resid_post|mlp_out|attn_out)")


def hook_name(layer: int, site: str) -> str:
    """The TransformerLens hook name of our (layer, site)."""
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_{site}"


def layer_and_site(cfg: dict, where: Path) -> tuple[int, str]:
    """Our (layer, site) from a SAELens cfg's hook_name, or from hook_layer alone (a residual hook)."""
    name = cfg.get("hook_name")
    if name is None:
        return int(cfg.get("hook_layer") or 0) + 1, "resid_post"
    match = HOOK.fullmatch(str(name))
    if match is None:
        raise CheckpointError(
            f"{where}: hook {name!r} is not one latentviz can read; it reads "
            "blocks.N.hook_resid_pre, hook_resid_post, hook_mlp_out and hook_attn_out"
        )
    block, site = int(match[1]), match[2]
    return (block, "resid_post") if site == "resid_pre" else (block + 1, site)


def export(sae: SparseAutoencoder, folder: str | Path) -> Path:
    """Write `sae` in the SAELens layout."""
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
        tensors["threshold"] = sae.threshold.detach()
        architecture = "jumprelu"
    cfg = {
        "architecture": architecture,
        "d_in": config.d_in,
        "d_sae": config.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "model_name": config.model_name,
        "hook_name": hook_name(config.layer, config.site),
        "hook_layer": max(config.layer - 1, 0),
        "hook_head_index": None,
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "prepend_bos": True,
        "context_size": 128,
    }
    if architecture == "topk":
        cfg["k"] = config.k
        cfg["activation_fn_kwargs"] = {"k": config.k}
    save_file({name: t.float().cpu().contiguous() for name, t in tensors.items()}, folder / WEIGHTS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))
    return folder


def read(folder: str | Path, d_in: int | None = None) -> SparseAutoencoder:
    """An SAE from a SAELens folder; `d_in`, when given, must match (the layer's width)."""
    folder = Path(folder)
    cfg = read_config(folder, "a SAELens SAE")
    for name in ("d_in", "d_sae"):
        if not isinstance(cfg.get(name), int):
            raise CheckpointError(f"{folder / CONFIG_FILE}: needs an integer {name}")
    if d_in is not None and cfg["d_in"] != d_in:
        raise CheckpointError(
            f"{folder}: this SAE reads {cfg['d_in']}-wide activations, but the chosen layer is {d_in} wide"
        )
    architecture = ARCHITECTURES.get(str(cfg.get("architecture", "standard")).lower())
    if architecture is None:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: architecture {cfg.get('architecture')!r} is not supported; "
            f"use one of {', '.join(sorted(set(ARCHITECTURES)))}"
        )
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: normalize_activations {cfg['normalize_activations']!r} is not supported"
        )
    try:
        tensors = load_file(folder / WEIGHTS_FILE)
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}") from None
    except SafetensorError as error:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({error})") from None
    d_in_, d_sae = cfg["d_in"], cfg["d_sae"]
    shapes = {"W_enc": (d_in_, d_sae), "W_dec": (d_sae, d_in_), "b_enc": (d_sae,), "b_dec": (d_in_,)}
    if architecture == "jumprelu":
        shapes["threshold"] = (d_sae,)
    for name, shape in shapes.items():
        if name not in tensors:
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing tensor {name}")
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(
                f"{folder / WEIGHTS_FILE}: {name} is {tuple(tensors[name].shape)}, cfg.json implies {shape}"
            )
    k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k") or 1
    layer, site = layer_and_site(cfg, folder / CONFIG_FILE)
    config = SAEConfig(
        d_in=d_in_,
        d_sae=d_sae,
        architecture=architecture,
        k=int(k),
        layer=layer,
        site=site,
        model_name=str(cfg.get("model_name", "")),
    )
    sae = SparseAutoencoder(config)
    state = {name: tensors[name].float() for name in shapes}
    if not cfg.get("apply_b_dec_to_input", True):  # their pre-activation is x W_enc + b_enc: fold b_dec in
        state["b_enc"] = state["b_enc"] + state["b_dec"] @ state["W_enc"]
    with torch.no_grad():
        for name, tensor in state.items():
            getattr(sae, name).copy_(tensor)
        sae.initialised.fill_(True)
    return sae.eval()
