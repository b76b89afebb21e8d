"""Where each transformer family keeps what latentviz reads, written once per family: its block
list, the modules whose outputs TransformerLens hooks as `hook_attn_out` and `hook_mlp_out` (what
each sublayer adds to the residual stream), and its final norm as the model applies it.

Hugging Face's names are false friends across families: Llama's `post_attention_layernorm` is the
norm *before* its MLP, while Gemma 2/3's and OLMo-2's is applied to the attention output before it
joins the residual stream, which is where TransformerLens (and so every SAELens and Gemma Scope
SAE) reads `hook_attn_out`. BERT's sublayer outputs are the dense projections before each
residual-and-LayerNorm; its block output (our resid_post, what sentence-transformers pools) is
after that LayerNorm, TransformerLens's `hook_normalized_resid_post`.

A family not in the table still encodes and maps (its block list is found by name) and can be read
at resid_post; its sublayer sites and its logit effects are refused in one line, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from latentviz.errors import LatentvizError


class ArchitectureError(LatentvizError):
    """A model whose layout latentviz does not know, asked for something that needs it."""


@dataclass(frozen=True)
class Architecture:
    blocks: str  # the block list, from the base model
    attn_out: str  # in a block: the module whose output is hook_attn_out
    mlp_out: str  # ... hook_mlp_out
    final_norm: str | None = None  # from the base model; encoders have none before an unembedding
    centred: bool = False  # a LayerNorm (subtracts the mean; GPT-2, Pythia) rather than an RMSNorm
    gain_offset: float = 0.0  # Gemma's RMSNorm scales by (1 + w)


_LLAMA = Architecture("layers", "self_attn", "mlp", "norm")
_POST_NORMED = Architecture("layers", "post_attention_layernorm", "post_feedforward_layernorm", "norm")

FAMILIES = {  # by config.model_type
    "gpt2": Architecture("h", "attn", "mlp", "ln_f", centred=True),
    "gpt_neox": Architecture("layers", "attention", "mlp", "final_layer_norm", centred=True),
    "llama": _LLAMA,  # SmolLM2 too
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": Architecture("layers", "self_attn", "mlp", "norm", gain_offset=1.0),
    "gemma2": replace(_POST_NORMED, gain_offset=1.0),
    "gemma3_text": replace(_POST_NORMED, gain_offset=1.0),
    "olmo2": _POST_NORMED,
    "bert": Architecture("encoder.layer", "attention.output.dense", "output.dense"),
    "roberta": Architecture("encoder.layer", "attention.output.dense", "output.dense"),
}
_BLOCK_LISTS = ("encoder.layer", "layers", "h", "decoder.layers", "transformer.h", "model.layers")


def _family(model: torch.nn.Module) -> str:
    return getattr(model.config, "model_type", type(model).__name__)


def of(model: torch.nn.Module, needed: str, instead: str = "") -> Architecture:
    """The model's family facts; a family not in the table is refused, naming what was `needed`
    and what works `instead`."""
    family = _family(model)
    if family not in FAMILIES:
        raise ArchitectureError(
            f"latentviz does not know where {family} models keep their {needed}; "
            f"it knows {', '.join(sorted(FAMILIES))}" + (f" ({instead})" if instead else "")
        )
    return FAMILIES[family]


def _get(module: torch.nn.Module, path: str) -> torch.nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The transformer blocks of a base model or of a model with a head."""
    base = getattr(model, "base_model", model)
    family = FAMILIES.get(_family(model))
    for path in (family.blocks,) if family else _BLOCK_LISTS:
        found = _get(base, path)
        if isinstance(found, torch.nn.ModuleList):
            return found
    raise ArchitectureError(
        f"cannot find the transformer blocks of {type(model).__name__}; use a BERT-, GPT- or Llama-like model"
    )


def site_module(model: torch.nn.Module, layer: int, site: str) -> torch.nn.Module:
    """The module whose output is `site` of block `layer` (1-based): the block itself for
    resid_post, else the sublayer output TransformerLens hooks for this family."""
    block = blocks(model)[layer - 1]
    if site == "resid_post":
        return block
    family = of(
        model, f"{site} (the {'attention' if site == 'attn_out' else 'MLP'} output)", "resid_post works for any model"
    )
    return _get(block, family.attn_out if site == "attn_out" else family.mlp_out)


def logit_effects(lm: torch.nn.Module, directions: torch.Tensor) -> torch.Tensor:
    """(n, vocab): how much each residual-stream direction raises each token's logit, read through
    the LM's final norm as it scales (its gain, (1 + w) for Gemma; centred first for a LayerNorm;
    the division by the token's norm, a positive scalar, left out) and its unembedding. The norm's
    and the unembedding's biases, and Gemma 2's final soft-cap (monotonic), add the same to every
    direction and change no ranking, so they are left out too."""
    family = of(lm, "final norm")
    norm = _get(getattr(lm, "base_model", lm), family.final_norm or "")
    if norm is None or getattr(norm, "weight", None) is None:
        raise ArchitectureError(f"{_family(lm)} has no final norm latentviz can read; logit effects need one")
    directions = directions.float()
    if family.centred:
        directions = directions - directions.mean(-1, keepdim=True)
    gain = norm.weight.detach().float().cpu() + family.gain_offset
    unembedding = lm.get_output_embeddings().weight.detach().float().cpu()
    return (directions * gain) @ unembedding.T
