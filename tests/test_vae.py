import pytest
import torch

from latentviz import metrics, train
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.models.vae import TextVAE, VAEConfig, beta_at
from latentviz.vocab import SPECIALS, Vocab, words

SENTENCES = [
    "the striker scored twice in the final .",
    "shares fell sharply on wall street today .",
    "the minister promised new taxes on fuel .",
    "the band released a new album this week .",
]


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
    config = VAEConfig(vocab=SPECIALS, beta=1.0, anneal="linear", anneal_share=0.5)
    assert [beta_at(s, 200, config) for s in (0, 50, 100, 199)] == [0.0, 0.5, 1.0, 1.0]
    cyclical = VAEConfig(vocab=SPECIALS, anneal="cyclical", anneal_cycles=4, beta=0.5)
    assert [beta_at(s, 400, cyclical) for s in (0, 25, 50, 99, 100, 125)] == [0.0, 0.25, 0.5, 0.5, 0.0, 0.25]
    assert beta_at(7, 10, VAEConfig(vocab=SPECIALS, anneal="none", beta=0.3)) == 0.3


@pytest.mark.parametrize("anneal", ["linear", "cyclical"])
@pytest.mark.parametrize("steps", [50, 852, 20_000])  # 852: the default BBC run, whose β stopped at 0.43 before
def test_every_schedule_reaches_its_beta_on_runs_of_any_length(anneal, steps):
    config = VAEConfig(vocab=SPECIALS, anneal=anneal, beta=0.8)
    used = [beta_at(s, steps, config) for s in range(steps)]
    assert max(used) == pytest.approx(0.8) and used[-1] == pytest.approx(0.8)
    assert used[0] == 0.0 and all(0.0 <= b <= 0.8 for b in used)


@pytest.mark.parametrize("free_bits, moves", [(10.0, False), (0.0, True)])
def test_free_bits_stop_pushing_small_kl_down(free_bits, moves, monkeypatch):
    vocab, tokens, embeddings, _ = corpus()
    model = TextVAE(
        VAEConfig(vocab=vocab.tokens, d_in=16, latent_dim=4, embed_dim=8, hidden=16, free_bits=free_bits, anneal="none")
    )
    monkeypatch.setattr(
        model, "log_likelihood", lambda tokens, z, dropout=0.0: torch.zeros(len(z))
    )  # leave only the KL term
    model.train()
    model(tokens[:8], embeddings[:8]).loss.backward()
    # Every dimension's KL is far below 10 nats: under that floor the KL term pushes nothing.
    assert bool(model.to_mu.weight.grad.abs().sum() > 0) is moves


@pytest.mark.parametrize("variant", ["pretrained-encoder", "rnn"])
def test_a_small_vae_learns_live_latents_and_reconstructs(variant, tmp_path):
    torch.manual_seed(0)
    vocab, tokens, embeddings, kinds = corpus()
    config = VAEConfig(
        vocab=vocab.tokens,
        variant=variant,
        d_in=16,
        latent_dim=4,
        embed_dim=32,
        hidden=64,
        max_len=12,
        anneal="linear",
        anneal_share=0.3,
        free_bits=0.1,
        word_dropout=0.3,
    )
    model = TextVAE(config)
    train.fit(model, (tokens, embeddings), config=train.TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup=10))
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(tokens, embeddings)
    assert metrics.active_units(mu.numpy()) >= 1
    assert metrics.mutual_information(mu.numpy(), logvar.numpy()) > 0.5
    decoded = model.decode(mu[:4])
    assert decoded == [vocab.decode(t.tolist()) for t in tokens[:4]]  # each sentence type comes back from its μ
    assert model.decode(mu[:4], "beam", beam=3) == decoded
    joint, q = model.log_weights(tokens, embeddings, samples=50)
    iw_nll = metrics.importance_weighted_nll(joint.numpy(), q.numpy()).mean()
    elbo_nll = train.evaluate(model, (tokens, embeddings))["elbo_nll"]
    assert iw_nll <= elbo_nll + 0.05  # the importance-weighted bound is at least as tight
    base.save(model, tmp_path)
    loaded = base.load(tmp_path)
    assert loaded.config == config and loaded.decode(mu[:2]) == decoded[:2]


def test_iwae_training_objective_runs_and_bad_configs_are_refused():
    vocab, tokens, embeddings, _ = corpus()
    config = VAEConfig(vocab=vocab.tokens, d_in=16, latent_dim=4, embed_dim=8, hidden=16, iw_samples=5, beta=0.5)
    model = TextVAE(config)
    model.train()
    out = model(tokens[:8], embeddings[:8])
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert out.metrics["beta"] == 1.0  # the IWAE bound has no β: at step 0 the ELBO's linear ramp would say 0
    with pytest.raises(LatentvizError, match="unknown VAE variant"):
        VAEConfig(vocab=SPECIALS, variant="transformer")
    with pytest.raises(LatentvizError, match="word dropout"):
        VAEConfig(vocab=SPECIALS, word_dropout=1.0)


class ToyDecoder:
    """Next-word probabilities that depend only on the previous word (ids: 2 <bos>, 3 <eos>, 4 a, 5 b):
    <bos> → a 0.55 | b 0.45; a → <eos> 0.4 | a 0.3 | b 0.3; b → <eos> 0.95 | a 0.05.
    Greedy says "a" (p = 0.22); the most likely sentence is "b" (p = 0.4275)."""

    table = torch.full((6, 6), 1e-9)
    table[2, 4], table[2, 5] = 0.55, 0.45
    table[4, 3], table[4, 4], table[4, 5] = 0.4, 0.3, 0.3
    table[5, 3], table[5, 4] = 0.95, 0.05

    def start(self, z):
        return torch.zeros(1, len(z), 1)

    def next_logits(self, token, state, z):
        return self.table[token].log(), state

    def reorder(self, state, index):
        return state[:, index]


def test_beam_search_finds_the_likelier_sentence_that_greedy_misses():
    from latentviz.models.vae import beam_search, generate

    z, args = torch.zeros(2, 1), dict(bos=2, eos=3, max_len=5, banned=(0, 1, 2))
    assert generate(ToyDecoder(), z, **args)[:, :2].tolist() == [[4, 3], [4, 3]]
    assert beam_search(ToyDecoder(), z, width=3, **args)[:, :2].tolist() == [[5, 3], [5, 3]]
    assert beam_search(ToyDecoder(), z, width=1, **args)[:, :2].tolist() == [[4, 3], [4, 3]]  # width 1 is greedy


def test_sampling_follows_the_model_probabilities_and_repeats_with_its_seed():
    from latentviz.models.vae import generate

    z, args = torch.zeros(4000, 1), dict(bos=2, eos=3, max_len=5, banned=(0, 1, 2))
    first = generate(ToyDecoder(), z, temperature=1.0, generator=torch.Generator().manual_seed(1), **args)
    assert abs(float((first[:, 0] == 4).float().mean()) - 0.55) < 0.03  # P(first word = a) = 0.55
    again = generate(ToyDecoder(), z, temperature=1.0, generator=torch.Generator().manual_seed(1), **args)
    assert torch.equal(first, again)
    cold = generate(ToyDecoder(), z[:3], temperature=1e-3, generator=torch.Generator().manual_seed(1), **args)
    assert cold[:, :2].tolist() == [[4, 3]] * 3  # near zero temperature, sampling is greedy


def test_a_pretrained_decoder_vae_trains_only_its_injection_and_decodes_as_it_scores(tiny_llama, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)
    frozen = {name: weight.clone() for name, weight in lm.state_dict().items()}
    _, _, embeddings, _ = corpus()
    config = VAEConfig(
        vocab=SPECIALS,
        variant="pretrained-decoder",
        d_in=16,
        latent_dim=4,
        max_len=12,
        lm_dim=lm.config.hidden_size,
        prefix_len=2,
        free_bits=0.5,
    )
    torch.manual_seed(0)
    model = TextVAE(config)
    model.attach_lm(lm, tokenizer)
    tokens = model.vocab.encode([SENTENCES[k] for k in torch.arange(64) % 4], config.max_len)
    assert model.vocab.decode(tokens[1].tolist()) == tokenizer.decode(
        tokenizer(SENTENCES[1], add_special_tokens=False)["input_ids"]
    )

    # Step-by-step decoding (prefix, then one token at a time through the LM's cache) sees exactly
    # the logits that training scores with the whole sentence at once.
    model.eval()
    z = torch.randn(4, 4)
    with torch.no_grad():
        whole = model.decoder(tokens[:4, :-1], z)
        state = model.decoder.start(z)
        for t in range(4):
            step, state = model.decoder.next_logits(tokens[:4, t], state, z)
            assert torch.allclose(step[:, 1:], whole[:, t, 1:], atol=1e-5)

    history = train.fit(
        model,
        (tokens, embeddings),
        config=train.TrainConfig(steps=40, batch_size=16, lr=1e-2, warmup=5, eval_every=20),
        held_out=(tokens[:16], embeddings[:16]),
    )
    assert history[-1]["reconstruction"] < history[0]["reconstruction"]
    assert all(torch.equal(frozen[name], weight) for name, weight in lm.state_dict().items())  # the LM never moved
    base.save(model, tmp_path)
    assert not any(
        name.startswith("decoder.lm") for name in load_file(tmp_path / "model.safetensors")
    )  # not saved either
    loaded = base.load(tmp_path)
    loaded.attach_lm(lm, tokenizer)
    assert loaded.eval().decode(z) == model.eval().decode(z) and len(model.decode(z, "beam", beam=2)) == 4


def test_diagnostics_flag_a_run_whose_held_out_nll_rose_after_its_best(store):
    import pandas as pd

    from latentviz import fit, runs

    store.add_dataset("d", "test", pd.DataFrame({"text": ["a b c"] * 3}))
    run = runs.VAERun(dataset="d")
    model_id = store.add_model("vae", "m", "d", "minilm", runs.to_record(run))
    for step, value in zip((100, 200, 300, 400, 500), (131.0, 129.8, 130.5, 133.2, 136.1), strict=True):
        store.add_training_metrics(model_id, step, "held_out", {"iw_nll": value})
    found = fit.vae.overfitting(store, model_id)
    assert found == {**found, "overfit": True, "best_step": 200, "best_iw_nll_k5": 129.8, "last_iw_nll_k5": 136.1}
    figures = {
        **found,
        "kept_step": 500,
        "collapsed": False,
        "kl_at_floor": True,
        "dims_at_free_bits_floor": 30,
        "kl_per_dim": [0.5] * 32,
        "reconstructs_poorly": True,
        "held_out_word_accuracy": 0.12,
    }
    failed = fit.vae.failed_checks(figures, run)
    assert [line.split(":")[0] for line in failed] == [
        "Overfitting",
        "KL sits at the free-bits floor (0.5 nats) in 30 of 32 dimensions",
        "Held-out sentences come back with 12% of their words (greedy decoding from the posterior mean)",
    ]
    assert "weights kept are step 500's" in failed[0]
    steady = {**figures, "overfit": False, "kl_at_floor": False, "reconstructs_poorly": False}
    assert fit.vae.failed_checks(steady, run) == []
    store.add_training_metrics(model_id, 600, "held_out", {"iw_nll": 129.0})  # a new low at the end
    assert fit.vae.overfitting(store, model_id)["overfit"] is False
