import pytest
import torch

from latentviz import metrics, train
from latentviz.models import base
from latentviz.models.vae import TextVAE, VAEConfig, beta_at
from latentviz.vocab import SPECIALS, Vocab, words

SENTENCES = ["the striker scored twice in the final .", "shares fell sharply on wall street today .",
             "the minister promised new taxes on fuel .", "the band released a new album this week ."]


def corpus():
    """Four sentence types, each with its own (noisy) embedding: a planted structure to recover."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=generator)
    kinds = torch.arange(64) % 4
    vocab = Vocab.build(SENTENCES, min_count=1)
    tokens = vocab.encode([SENTENCES[k] for k in kinds], max_len=12)
    return vocab, tokens, centres[kinds] + 0.05 * torch.randn(64, 16, generator=generator), kinds


def test_vocab_round_trip_and_unknown_words():
    vocab = Vocab.build(["Hello, world! Hello there."], min_count=1)
    assert vocab.tokens[:4] == SPECIALS and words("Don't stop!") == ["don't", "stop", "!"]
    ids = vocab.encode(["hello world, zebra"], max_len=10)[0]
    assert vocab.decode(ids.tolist()) == "hello world, <unk>"
    hyphens = Vocab.build(["a 40-year-old man"], min_count=1)
    assert hyphens.decode(hyphens.encode(["a 40-year-old man"], 10)[0].tolist()) == "a 40-year-old man"
    assert ids[0] == vocab.index["<bos>"] and (ids == 0).sum() == 12 - 6  # <bos> 4 words <eos>, padded to max_len + 2


def test_kl_weight_schedules():
    config = VAEConfig(vocab=SPECIALS, beta=1.0, anneal="linear", anneal_steps=100)
    assert [beta_at(s, config) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    cyclical = VAEConfig(vocab=SPECIALS, anneal="cyclical", anneal_steps=100, beta=0.5)
    assert [beta_at(s, cyclical) for s in (0, 25, 50, 99, 100, 125)] == [0.0, 0.25, 0.5, 0.5, 0.0, 0.25]
    assert beta_at(7, VAEConfig(vocab=SPECIALS, anneal="none", beta=0.3)) == 0.3


@pytest.mark.parametrize("free_bits, moves", [(10.0, False), (0.0, True)])
def test_free_bits_stop_pushing_small_kl_down(free_bits, moves, monkeypatch):
    vocab, tokens, embeddings, _ = corpus()
    model = TextVAE(VAEConfig(vocab=vocab.tokens, d_in=16, latent_dim=4, embed_dim=8, hidden=16, free_bits=free_bits, anneal="none"))
    monkeypatch.setattr(model, "log_likelihood", lambda tokens, z, dropout=0.0: torch.zeros(len(z)))  # leave only the KL term
    model.train()
    model(tokens[:8], embeddings[:8]).loss.backward()
    # Every dimension's KL is far below 10 nats: under that floor the KL term pushes nothing.
    assert bool(model.to_mu.weight.grad.abs().sum() > 0) is moves


@pytest.mark.parametrize("variant", ["pretrained-encoder", "rnn"])
def test_a_small_vae_learns_live_latents_and_reconstructs(variant, tmp_path):
    torch.manual_seed(0)
    vocab, tokens, embeddings, kinds = corpus()
    config = VAEConfig(vocab=vocab.tokens, variant=variant, d_in=16, latent_dim=4, embed_dim=32, hidden=64, max_len=12,
                       anneal="linear", anneal_steps=100, free_bits=0.1, word_dropout=0.3)
    model = TextVAE(config)
    train.fit(model, (tokens, embeddings), config=train.TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup=10))
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(tokens, embeddings)
    assert metrics.active_units(mu.numpy()) >= 1
    assert metrics.mutual_information(mu.numpy(), logvar.numpy()) > 0.5
    decoded = model.decode(mu[:4])
    assert decoded == [vocab.decode(t.tolist()) for t in tokens[:4]]  # each sentence type comes back from its μ
    joint, q = model.log_weights(tokens, embeddings, samples=50)
    iw_nll = metrics.importance_weighted_nll(joint.numpy(), q.numpy()).mean()
    elbo_nll = train.evaluate(model, (tokens, embeddings))["elbo_nll"]
    assert iw_nll <= elbo_nll + 0.05  # the importance-weighted bound is at least as tight
    base.save(model, tmp_path)
    loaded = base.load(tmp_path)
    assert loaded.config == config and loaded.decode(mu[:2]) == decoded[:2]


def test_iwae_training_objective_runs_and_bad_configs_are_refused():
    vocab, tokens, embeddings, _ = corpus()
    model = TextVAE(VAEConfig(vocab=vocab.tokens, d_in=16, latent_dim=4, embed_dim=8, hidden=16, iw_samples=5))
    model.train()
    out = model(tokens[:8], embeddings[:8])
    out.loss.backward()
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="unknown VAE variant"):
        VAEConfig(vocab=SPECIALS, variant="transformer")
    with pytest.raises(ValueError, match="word dropout"):
        VAEConfig(vocab=SPECIALS, word_dropout=1.0)
