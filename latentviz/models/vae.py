"""Text VAEs with Gaussian latents (Bowman et al., 2016): a GRU decoder over a word vocabulary,
with the latent z as the decoder's first hidden state and as an extra input at every step.

Three variants: `rnn` (a GRU encoder over the words), `pretrained-encoder` (a frozen sentence
embedding, e.g. MiniLM, through an MLP; the same GRU decoder) and `pretrained-decoder` (that encoder,
and a frozen causal LM such as SmolLM2 as the decoder, in the manner of Optimus (Li et al., 2020):
z becomes `prefix_len` prefix embeddings and is also added to every input embedding). Remedies for
posterior collapse: β and its annealing (linear or cyclical, Fu et al., 2019), free bits per
dimension (Kingma et al., 2016), word dropout on the decoder's inputs, and the importance-weighted
(IWAE) objective with K samples.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from latentviz.configs import BEAM_WIDTH, DECODING, TEMPERATURE, VAEConfig
from latentviz.errors import ConfigError
from latentviz.models.base import LatentModel, StepOutput, register
from latentviz.vocab import BOS, EOS, PAD, UNK, Vocab


def beta_at(step: int, steps: int, config: VAEConfig) -> float:
    """The KL weight at a training step of a run of `steps`: constant, a linear ramp from 0 over the
    first `anneal_share` of the run, or `anneal_cycles` cycles that each ramp over their first half
    and then hold. Every schedule reaches `config.beta`; the last steps train at it."""
    if config.anneal == "none":
        return config.beta
    if config.anneal == "linear":
        return config.beta * min(1.0, step / max(1.0, config.anneal_share * steps))
    cycle = steps / config.anneal_cycles
    phase = (step % cycle) / cycle
    return config.beta * min(1.0, 2 * phase)


class GRUDecoder(nn.Module):
    def __init__(
        self, vocab_size: int, embed_dim: int, hidden: int, latent_dim: int, dropout: float = 0.0, skip: bool = False
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.z_to_hidden = nn.Linear(latent_dim, hidden)
        self.gru = nn.GRU(embed_dim + latent_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)
        # z straight to the word logits: a short path for what the sentence is about, which the
        # decoder learns long before it learns to carry z through its recurrence.
        self.z_to_logits = nn.Linear(latent_dim, vocab_size, bias=False) if skip else None

    def _logits(self, hidden: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.out(hidden)
        if self.z_to_logits is not None:
            logits = logits + self.z_to_logits(z).view(len(z), *([1] * (hidden.dim() - 2)), -1)
        return logits

    def forward(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, V) for input ids (B, T), each step also seeing z."""
        embedded = self.dropout(self.embed(inputs))
        steps = torch.cat([embedded, z[:, None, :].expand(-1, inputs.shape[1], -1)], dim=-1)
        hidden, _ = self.gru(steps, torch.tanh(self.z_to_hidden(z))[None])
        return self._logits(self.dropout(hidden), z)

    def start(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.z_to_hidden(z))[None]

    def next_logits(
        self, token: torch.Tensor, state: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: logits (B, V) for the word after `token` (B,), and the new state."""
        hidden, state = self.gru(torch.cat([self.embed(token), z], dim=-1)[:, None, :], state)
        return self._logits(hidden[:, 0], z), state

    def reorder(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The state of the sequences at `index` (for beam search)."""
        return state[:, index]


class LMVocab:
    """A causal LM's tokenizer behind the word vocabulary's interface. Ids are the LM's plus one,
    so that 0 stays padding (and the start mark: the LM begins from its own end-of-text token)."""

    def __init__(self, tokenizer, eos: int):
        self.tokenizer = tokenizer
        unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else eos
        self.index = {PAD: 0, BOS: 0, EOS: eos + 1, UNK: unk + 1}
        self.size = len(tokenizer) + 1

    def __len__(self) -> int:
        return self.size

    def encode(self, texts: list[str], max_len: int) -> torch.Tensor:
        """(N, max_len + 2): start, up to max_len LM tokens, end of text; padded with 0."""
        out = torch.zeros(len(texts), max_len + 2, dtype=torch.long)
        for row, ids in enumerate(self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]):
            ids = [i + 1 for i in ids[:max_len]] + [self.index[EOS]]
            out[row, 1 : len(ids) + 1] = torch.tensor(ids)
        return out

    def decode(self, ids) -> str:
        kept = []
        for i in ids:
            if int(i) == self.index[EOS]:
                break
            if int(i) > 0:
                kept.append(int(i) - 1)
        return self.tokenizer.decode(kept, skip_special_tokens=True).strip()


class LMDecoder(nn.Module):
    """A frozen causal LM that reads z twice: as prefix embeddings, and added to every input
    embedding. Only the two projections from z train; the LM is attached after construction and
    is not part of the state dict (its weights stay in the backbone's files)."""

    def __init__(self, latent_dim: int, lm_dim: int, prefix_len: int):
        super().__init__()
        self.prefix_len = prefix_len
        self.to_prefix = nn.Linear(latent_dim, prefix_len * lm_dim)
        self.to_embedding = nn.Linear(latent_dim, lm_dim)
        self.__dict__["lm"] = None  # kept out of the module tree: not trained, not saved

    def attach(self, lm, eos: int, fresh: bool = False) -> None:
        """Use `lm` as the decoder. `fresh` (a model about to train): start the injection as a no-op,
        prefix = end-of-text embeddings and nothing added, so training begins from the LM as it is."""
        lm.requires_grad_(False)
        self.__dict__["lm"] = lm.eval().to(self.to_prefix.weight.device)
        self.eos = eos
        if fresh:
            with torch.no_grad():
                start = lm.get_input_embeddings().weight[eos].to(self.to_prefix.bias.device)
                self.to_prefix.weight.mul_(0.01)
                self.to_prefix.bias.copy_(start.repeat(self.prefix_len))
                self.to_embedding.weight.zero_()
                self.to_embedding.bias.zero_()

    def _embed(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.lm is None:
            raise RuntimeError("attach the decoder LM first (TextVAE.attach_lm)")
        # Shifted ids (LM id + 1): 0, the start mark and padding, reads the LM's end-of-text token.
        lm_ids = torch.where(ids > 0, ids - 1, torch.full_like(ids, self.eos))
        return self.lm.get_input_embeddings()(lm_ids) + self.to_embedding(z)[:, None, :]

    def _prefix(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_prefix(z).view(len(z), self.prefix_len, -1)

    def forward(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, V + 1) for shifted input ids (B, T); column 0 (padding) is never likely."""
        embeds = torch.cat([self._prefix(z), self._embed(inputs, z)], dim=1)
        mask = torch.cat(
            [
                torch.ones(len(z), self.prefix_len, dtype=torch.long, device=z.device),
                (torch.arange(inputs.shape[1], device=z.device)[None] == 0) | (inputs > 0),
            ],
            dim=1,
        ).long()
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask).logits[:, self.prefix_len :]
        return torch.cat([torch.full_like(logits[..., :1], float("-inf")), logits], dim=-1)

    def _run_cached(self, embeds: torch.Tensor, cache=None):
        """One forward pass that extends the LM's key/value cache (transformers ≥ 5.20 names it `cache`)."""
        name = "cache" if "cache" in inspect.signature(self.lm.forward).parameters else "past_key_values"
        out = self.lm(inputs_embeds=embeds, use_cache=True, **({name: cache} if cache is not None else {}))
        return out.logits[:, -1], getattr(out, name)

    def start(self, z: torch.Tensor):
        return self._run_cached(self._prefix(z))[1]

    def next_logits(self, token: torch.Tensor, state, z: torch.Tensor):
        logits, state = self._run_cached(self._embed(token[:, None], z), state)
        return torch.cat([torch.full_like(logits[:, :1], float("-inf")), logits], dim=-1), state

    def reorder(self, state, index: torch.Tensor):
        state.reorder_cache(index)
        return state


def generate(
    decoder,
    z: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_len: int,
    banned: tuple[int, ...] = (),
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ids (B, ≤ max_len + 1) from <bos> until <eos> or max_len: the most likely word at each step
    (temperature 0) or a sample from softmax(logits / temperature). `banned` ids are never chosen.
    `decoder` has start(z), next_logits(token, state, z) and, for beam search, reorder(state, index)."""
    state = decoder.start(z)
    token = torch.full((len(z),), bos, dtype=torch.long, device=z.device)
    out, done = [], torch.zeros(len(z), dtype=torch.bool, device=z.device)
    for _ in range(max_len + 1):
        logits, state = decoder.next_logits(token, state, z)
        logits[:, list(banned)] = float("-inf")
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(z.device)
        else:
            token = logits.argmax(-1)
        token = token.masked_fill(done, eos)  # a finished sentence only repeats <eos>
        out.append(token)
        done |= token == eos
        if done.all():
            break
    return torch.stack(out, dim=1)


def beam_search(
    decoder, z: torch.Tensor, *, bos: int, eos: int, max_len: int, banned: tuple[int, ...] = (), width: int = 5
) -> torch.Tensor:
    """The best of `width` beams for each z, scored by log-probability per token (so long sentences
    are not penalised for their length): ids (B, ≤ max_len + 1)."""
    batch = len(z)
    z_beams = z.repeat_interleave(width, dim=0)
    state = decoder.start(z_beams)
    token = torch.full((batch * width,), bos, dtype=torch.long, device=z.device)
    scores = torch.full((batch, width), float("-inf"), device=z.device)
    scores[:, 0] = 0.0  # all beams start identical: keep one, or the top-k would pick it `width` times
    lengths = torch.zeros(batch, width, device=z.device)
    done = torch.zeros(batch, width, dtype=torch.bool, device=z.device)
    history = torch.zeros(batch, width, 0, dtype=torch.long, device=z.device)
    for _ in range(max_len + 1):
        logits, state = decoder.next_logits(token, state, z_beams)
        logits[:, list(banned)] = float("-inf")
        log_probs = torch.log_softmax(logits, dim=-1).view(batch, width, -1)
        # A finished beam continues with <eos> at no cost, so its score stays as it was.
        finished = torch.full_like(log_probs[0, 0], float("-inf"))
        finished[eos] = 0.0
        log_probs = torch.where(done[..., None], finished, log_probs)
        vocab = log_probs.shape[-1]
        candidates = (scores[..., None] + log_probs).view(batch, -1)
        scores, flat = candidates.topk(width, dim=-1)
        parent, token = flat // vocab, flat % vocab
        history = torch.cat(
            [history.gather(1, parent[..., None].expand(-1, -1, history.shape[-1])), token[..., None]], dim=-1
        )
        lengths = lengths.gather(1, parent) + (~done.gather(1, parent)).float()
        done = done.gather(1, parent) | (token == eos)
        state = decoder.reorder(state, (parent + width * torch.arange(batch, device=z.device)[:, None]).view(-1))
        token = token.view(-1)
        if done.all():
            break
    best = (scores / lengths.clamp(min=1)).argmax(-1)
    return history[torch.arange(batch), best]


@register("vae")
class TextVAE(LatentModel):
    """Sentence → q(z|x) = N(μ, diag σ²) → words. Batches are (token ids, embeddings)."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.vocab = Vocab(config.vocab)  # pretrained-decoder: replaced by the LM's tokenizer in attach_lm
        self.step, self.steps = 0, 1  # annealing follows the training step (set_step)
        if config.variant == "rnn":
            self.embed = nn.Embedding(len(self.vocab), config.embed_dim, padding_idx=0)
            self.encoder = nn.GRU(config.embed_dim, config.hidden, batch_first=True)
            width = config.hidden
        else:
            self.encoder = nn.Sequential(nn.Linear(config.d_in, config.hidden), nn.GELU())
            width = config.hidden
        self.to_mu = nn.Linear(width, config.latent_dim)
        self.to_logvar = nn.Linear(width, config.latent_dim)
        if config.variant == "pretrained-decoder":
            if config.lm_dim < 1:
                raise ConfigError("a pretrained-decoder VAE needs lm_dim, the decoder LM's hidden size")
            self.decoder = LMDecoder(config.latent_dim, config.lm_dim, config.prefix_len)
        else:
            self.decoder = GRUDecoder(
                len(self.vocab), config.embed_dim, config.hidden, config.latent_dim, config.dropout, config.skip
            )

    def set_step(self, step: int, steps: int) -> None:
        self.step, self.steps = step, steps

    def attach_lm(self, lm, tokenizer, fresh: bool = False) -> None:
        """Give a pretrained-decoder VAE its causal LM (e.g. backbones.causal_lm) and tokenizer;
        `fresh` for a new model, so that its injection starts as a no-op."""
        if self.config.variant != "pretrained-decoder":
            raise ConfigError(
                f"a {self.config.variant} VAE has its own decoder; only pretrained-decoder VAEs take an LM"
            )
        if lm.config.hidden_size != self.config.lm_dim:
            raise ConfigError(
                f"this VAE was trained with a {self.config.lm_dim}-wide LM, not {lm.config.hidden_size}-wide"
            )
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else lm.config.eos_token_id
        self.decoder.attach(lm, eos, fresh)
        self.vocab = LMVocab(tokenizer, eos)

    def encode(self, tokens: torch.Tensor, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.variant == "rnn":
            lengths = (tokens != 0).sum(1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(
                self.embed(tokens), lengths, batch_first=True, enforce_sorted=False
            )
            _, last = self.encoder(packed)
            features = last[0]
        else:
            features = self.encoder(embeddings)
        return self.to_mu(features), self.to_logvar(features)

    def log_likelihood(self, tokens: torch.Tensor, z: torch.Tensor, word_dropout: float = 0.0) -> torch.Tensor:
        """ln p(x | z) per sentence: the words and <eos>, given <bos> and the words before."""
        tokens = tokens[:, : int((tokens != 0).sum(1).max()) + 1]  # no steps over columns that are padding in every row
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        if word_dropout > 0:  # hide words from the decoder so it must lean on z
            drop = (torch.rand(inputs.shape, device=inputs.device) < word_dropout) & (inputs > 3)
            inputs = inputs.masked_fill(drop, self.vocab.index[UNK])
        logits = self.decoder(inputs, z)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=self.vocab.index[PAD], reduction="none")
        return -nll.sum(1)

    def forward(self, tokens: torch.Tensor, embeddings: torch.Tensor) -> StepOutput:
        mu, logvar = self.encode(tokens, embeddings)
        kl_dims = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)  # (B, D)
        kl = kl_dims.sum(1)
        iwae = self.config.iw_samples > 1 and self.training
        beta = (
            beta_at(self.step, self.steps, self.config) if self.training and not iwae else 1.0
        )  # IWAE's bound has none
        dropout = self.config.word_dropout if self.training else 0.0
        if iwae:
            loss = self._iwae_loss(tokens, mu, logvar, dropout)
            reconstruction = torch.tensor(float("nan"))
        else:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            reconstruction = -self.log_likelihood(tokens, z, dropout)
            # Free bits: below the floor a dimension's KL is not pushed down any further.
            floor = self.config.free_bits
            kl_term = torch.clamp(kl_dims.mean(0), min=floor).sum() if floor > 0 else kl.mean()
            loss = reconstruction.mean() + beta * kl_term
        reconstruction, kl = reconstruction.detach(), kl.detach()
        figures = {
            "reconstruction": float(reconstruction.mean()),
            "kl": float(kl.mean()),
            "beta": beta,
            "elbo_nll": float((reconstruction + kl).mean()),
        }
        return StepOutput(loss, figures)

    def _iwae_loss(self, tokens, mu, logvar, dropout) -> torch.Tensor:
        k = self.config.iw_samples
        std = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, device=mu.device)
        z = mu[None] + eps * std[None]  # (K, B, D)
        log_q = (-0.5 * (eps.pow(2) + logvar[None] + math.log(2 * math.pi))).sum(-1)
        log_prior = (-0.5 * (z.pow(2) + math.log(2 * math.pi))).sum(-1)
        log_lik = torch.stack([self.log_likelihood(tokens, z[i], dropout) for i in range(k)])
        weights = log_lik + log_prior - log_q  # (K, B)
        return -(torch.logsumexp(weights, 0) - math.log(k)).mean()

    @torch.no_grad()
    def log_weights(
        self, tokens: torch.Tensor, embeddings: torch.Tensor, samples: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ln p(x, z_k), ln q(z_k | x)), each (B, K), for the importance-weighted NLL."""
        mu, logvar = self.encode(tokens, embeddings)
        std = (0.5 * logvar).exp()
        joint, q = [], []
        for _ in range(samples):
            eps = torch.randn_like(mu)
            z = mu + eps * std
            q.append((-0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi))).sum(-1))
            joint.append(self.log_likelihood(tokens, z) + (-0.5 * (z.pow(2) + math.log(2 * math.pi))).sum(-1))
        return torch.stack(joint, 1), torch.stack(q, 1)

    @torch.no_grad()
    def decode(
        self,
        z: torch.Tensor,
        method: str = "greedy",
        *,
        beam: int = BEAM_WIDTH,
        temperature: float = TEMPERATURE,
        seed: int = 0,
    ) -> list[str]:
        """Sentences for latents z (B, D): greedy, beam search of width `beam`, or sampling at `temperature`."""
        if method not in DECODING:
            raise ConfigError(f"unknown decoding {method!r}; use one of {', '.join(DECODING)}")
        # <unk> is never the most useful word to show: decode the best real word instead.
        args = {
            "bos": self.vocab.index[BOS],
            "eos": self.vocab.index[EOS],
            "max_len": self.config.max_len,
            "banned": (self.vocab.index[PAD], self.vocab.index[BOS], self.vocab.index[UNK]),
        }
        if method == "beam":
            ids = beam_search(self.decoder, z, width=beam, **args)
        else:
            generator = torch.Generator().manual_seed(seed)
            ids = generate(
                self.decoder, z, temperature=temperature if method == "sample" else 0.0, generator=generator, **args
            )
        return [self.vocab.decode(row) for row in ids.tolist()]
