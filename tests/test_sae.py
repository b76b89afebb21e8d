import numpy as np
import pytest
import torch

from latentviz import constants, metrics, synthetic, train
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.models.sae import JUMPRELU_RELATIVE_BANDWIDTH, SAEConfig, SparseAutoencoder, geometric_median


def test_sae_metrics_on_known_answers():
    f = np.array([[0, 2, 0], [1, 1, 0], [0, 0, 0], [3, 0, 0]])
    assert metrics.l0(f) == (1 + 2 + 0 + 1) / 4
    counts = metrics.firing_counts(f)
    assert counts.tolist() == [2, 2, 0] and metrics.dead_latents(counts) == 1
    # tokens of unequal centred norms, so the ratio of sums (SAELens 6) and the mean of per-token
    # ratios (its legacy formula: (1/5 + 0 + 1/8 + 0) / 4 = 0.081) differ
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [7.0, 1.0]])  # mean (2, 1): Σ‖x − x̄‖² = 5 + 2 + 8 + 25
    x_hat = x + np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # Σ‖x − x̂‖² = 2
    assert metrics.fraction_of_variance_unexplained(x, x_hat) == pytest.approx(2 / 40)
    assert metrics.explained_variance(x, x_hat) == pytest.approx(1 - 2 / 40)
    assert metrics.fraction_of_variance_unexplained(x, np.tile(x.mean(0), (4, 1))) == pytest.approx(
        1.0
    )  # the mean explains nothing
    nonzero = x[1:]  # a zero vector has no cosine
    assert metrics.mean_cosine(nonzero, 2 * nonzero) == pytest.approx(1.0)
    assert metrics.mean_cosine(nonzero[:1], -nonzero[:1]) == pytest.approx(-1.0)
    # a huge offset shared by every token changes no FVU computed as a ratio of sums
    assert metrics.fraction_of_variance_unexplained(x + 1e6, x_hat + 1e6) == pytest.approx(2 / 40, rel=1e-6)
    hist, edges = metrics.log_density_histogram(np.array([1, 10, 100, 0]), tokens=100, bins=2)
    assert hist.tolist() == [1, 2] and edges.tolist() == [-2.0, -1.0, 0.0]
    assert metrics.ce_loss_recovered(ce_clean=2.0, ce_sae=2.5, ce_zero_ablation=7.0) == pytest.approx(0.9)
    assert metrics.delta_lm_loss(2.0, 2.5) == pytest.approx(0.5)


def test_feature_recovery_pairs_decoder_rows_and_true_features_one_to_one():
    truth = np.eye(3)
    # the same directions, reordered, sign-flipped and scaled: all recovered
    assert metrics.feature_recovery(-2 * truth[[2, 0, 1]], truth) == pytest.approx(1.0)
    # two true features whose best row is the same: a one-to-one pairing gives that row to one of them
    # (|cos| 1/√2 + 0.1 + 1 over 3), where each feature's best row (1/√2 + 1/√2 + 1) would count it twice
    decoder = np.array([[1.0, 1.0, 0.0], [0.1, 0.0, 0.99**0.5], [0.0, 0.0, 1.0]])
    assert metrics.feature_recovery(decoder, truth) == pytest.approx((2**-0.5 + 0.1 + 1) / 3)
    # more rows than true features: the best of them are paired, the rest ignored
    assert metrics.feature_recovery(np.vstack([truth, [[1.0, 1.0, 1.0]]]), truth) == pytest.approx(1.0)


def test_synthetic_activations_hold_their_features_at_their_rates():
    spec = synthetic.Synthetic(d_in=32, features=128, active=6.0, seed=1)
    features = synthetic.Features(spec)
    assert float(features.probabilities.sum()) == pytest.approx(6.0)
    assert features.probabilities.max() / features.probabilities.min() > 100  # a spread over decades
    x = features.sample(20_000, seed=2)
    assert torch.equal(x, features.sample(20_000, seed=2)) and not torch.equal(x, features.sample(20_000, seed=3))
    # a feature's contribution is along its direction: the one feature that always fires, alone, is the mean
    alone = synthetic.Features(synthetic.Synthetic(d_in=32, features=1, active=1.0, seed=1))
    assert float(alone.probabilities) == 1.0
    mean = alone.sample(20_000, seed=2).mean(0)
    assert torch.nn.functional.cosine_similarity(mean, alone.directions[0], dim=0) > 0.999
    scaled = synthetic.Features(synthetic.Synthetic(d_in=32, features=128, active=6.0, seed=1, scale=100.0))
    assert torch.allclose(scaled.sample(20_000, seed=2), 100 * x, rtol=1e-4, atol=1e-3)
    # an SAE given the true directions as its decoder recovers them all
    assert metrics.feature_recovery(features.directions.numpy(), features.directions.numpy()) == pytest.approx(1.0)


def test_geometric_median_resists_an_outlier():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [100.0, 100.0]])
    median = geometric_median(x)
    assert median.norm() < 1.5 and x.mean(0).norm() > 20


def planted(n=4096, d=16, atoms=32, active=3, seed=0):
    """Tokens that are sums of `active` of `atoms` unit directions with positive weights, and the atoms."""
    g = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(atoms, d, generator=g)
    dictionary /= dictionary.norm(dim=1, keepdim=True)
    codes = torch.zeros(n, atoms)
    for row in range(n):
        codes[row, torch.randperm(atoms, generator=g)[:active]] = 1 + torch.rand(active, generator=g)
    return codes @ dictionary + 0.5, dictionary


@pytest.mark.parametrize(
    "architecture, max_fvu, max_l0",
    [("standard", 0.1, 20), ("topk", 0.15, 3), ("batchtopk", 0.15, 6), ("jumprelu", 0.15, 6)],
)
def test_each_architecture_learns_a_planted_sparse_code(architecture, max_fvu, max_l0):
    x, atoms = planted()  # 3 of 32 atoms per token in 16 dimensions: a sparse code of 64 latents fits it
    config = SAEConfig(
        d_in=16,
        d_sae=64,
        architecture=architecture,
        k=3,
        l1_coefficient=0.3,
        l0_coefficient=0.012,  # × this data's variance, 8.4: a weight of 0.1
        jumprelu_sparsity="step",
        jumprelu_init_threshold=0.1,
        jumprelu_bandwidth=0.05,
    )  # jumprelu's defaults are set for LM activations (bench/sae.py); this data is 16 numbers
    torch.manual_seed(0)
    sae = SparseAutoencoder(config)
    train.fit(sae, x[:3584], config=train.TrainConfig(steps=1500, batch_size=256, lr=3e-3, warmup=50))
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)  # unit-norm decoder rows
    sae.eval()
    with torch.no_grad():
        held = x[3584:]
        f = sae.encode(held)
        x_hat = sae.decode(f)
    assert metrics.fraction_of_variance_unexplained(held.numpy(), x_hat.numpy()) < max_fvu
    assert metrics.l0(f.numpy()) <= max_l0
    # the dictionary itself is found: nearly every planted atom has a decoder row pointing its way
    best_cosine = (atoms @ sae.W_dec.detach().t()).max(1).values
    assert int((best_cosine > 0.9).sum()) >= 30, best_cosine.sort().values[:5]


@pytest.mark.parametrize("architecture", ["standard", "topk", "batchtopk", "jumprelu"])
def test_at_the_defaults_an_sae_learns_the_same_from_activations_of_any_size(architecture):
    """Inputs are normalised by default, so every other default (rate, λ, θ) means the same on
    activations a thousand times larger: the same latents fire and the FVU is the same."""
    x, _ = planted()
    fits = []
    for scale in (1.0, 1000.0):
        torch.manual_seed(0)
        sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture=architecture, k=3))
        train.fit(sae, x[:3584] * scale, config=train.TrainConfig(steps=60, batch_size=256, lr=3e-3, warmup=10))
        sae.eval()
        with torch.no_grad():
            f = sae.encode(x[3584:] * scale)
            fvu = metrics.fraction_of_variance_unexplained(x[3584:].numpy() * scale, sae.decode(f).numpy())
        fits.append((f > 0, fvu))
    (active, fvu), (active_scaled, fvu_scaled) = fits
    assert fvu == pytest.approx(fvu_scaled, rel=5e-3)  # float rounding differs at each size
    assert (active == active_scaled).float().mean() > 0.99
    # without the normalisation the same rate is a different step at each size
    torch.manual_seed(0)
    raw = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture=architecture, k=3, normalize_input=False))
    train.fit(raw, x[:3584] * 1000, config=train.TrainConfig(steps=60, batch_size=256, lr=3e-3, warmup=10))
    raw.eval()
    with torch.no_grad():
        f = raw.encode(x[3584:] * 1000)
        fvu_raw = metrics.fraction_of_variance_unexplained(x[3584:].numpy() * 1000, raw.decode(f).numpy())
    assert fvu_raw != pytest.approx(fvu, rel=1e-2)


def test_jumprelu_starts_at_l0_k_and_its_quadratic_penalty_is_zero_there():
    x, _ = planted(n=2048)
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture="jumprelu", k=4))
    sae.train()
    first = sae(x)  # the first batch sets the threshold: 4 of every 64 tokens pass each latent's
    assert first.metrics["l0"] == pytest.approx(4, abs=0.1)
    z = sae.pre_activations(x).detach()
    assert float(sae.bandwidth) == pytest.approx(JUMPRELU_RELATIVE_BANDWIDTH * float(z.std()), rel=1e-5)
    # the loss is the MSE plus the coefficient · 2/k · (L0 − k)² per token (zero for tokens at L0 = k),
    # weighed by the (normalised) data's total variance E‖x − x̄‖², the MSE's own scale
    centred = x * sae.input_scale - sae.b_dec.detach()
    variance = float((centred - centred.mean(0)).pow(2).sum(1).mean())
    active = (z > sae.jump_threshold()).float().sum(-1)
    penalty = sae.config.l0_coefficient * variance * (2 / 4 * (active - 4).pow(2)).mean()
    assert float(first.loss.detach()) == pytest.approx(first.metrics["mse"] + float(penalty), rel=1e-5)
    # a checkpoint written before the quadratic penalty keeps training with the linear one
    assert SAEConfig.from_saved({"architecture": "jumprelu"}).jumprelu_sparsity == "step"


def test_jumprelu_is_relu_then_threshold_and_keeps_its_thresholds_non_negative():
    x, _ = planted(n=512)
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture="jumprelu", k=4)).eval()
    with torch.no_grad():
        sae.threshold.copy_(torch.linspace(-1.0, 1.0, 64))  # as an imported SAE may have: some θ < 0
        z = sae.pre_activations(x)
        f = sae.encode(x)
    assert torch.equal(f, torch.relu(z) * (z > sae.jump_threshold()))  # SAELens: ReLU(z)·H(z − θ)
    assert metrics.l0(f.numpy()) == pytest.approx(float(((z > 0) & (z > sae.jump_threshold())).sum(-1).float().mean()))
    # training moves θ by Adam's steps of about lr: from a small θ that is below 0 within a step
    config = SAEConfig(
        d_in=16, d_sae=64, architecture="jumprelu", k=4, l0_coefficient=0.0, jumprelu_init_threshold=1e-3
    )
    torch.manual_seed(0)
    trained = SparseAutoencoder(config)
    train.fit(trained, x, config=train.TrainConfig(steps=20, batch_size=128, lr=1e-2, warmup=0))
    assert float(trained.jump_threshold().detach().min()) >= 0.0


def test_a_jumprelu_checkpoint_keeps_its_first_batch_settings_and_resumes(tmp_path):
    x, _ = planted(n=1024)
    config = SAEConfig(d_in=16, d_sae=64, architecture="jumprelu", k=4)
    torch.manual_seed(0)
    whole = SparseAutoencoder(config)
    train.fit(whole, x, config=train.TrainConfig(steps=20, batch_size=256))
    schedule = train.TrainConfig(steps=20, batch_size=256)

    def stop_at_10(done, steps, metrics):
        if done == 10:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):  # stopped half-way: a checkpoint at step 10
        train.fit(SparseAutoencoder(config), x, config=schedule, folder=tmp_path, progress=stop_at_10)
    resumed = SparseAutoencoder(config)  # a fresh model: its threshold scale and window come from the checkpoint
    train.fit(resumed, x, config=schedule, folder=tmp_path)
    assert float(resumed.bandwidth) == float(whole.bandwidth) > 0
    with torch.no_grad():
        assert torch.allclose(resumed.eval().encode(x[:64]), whole.eval().encode(x[:64]), atol=1e-5)


def test_a_jumprelu_checkpoint_from_before_the_data_scales_loads_as_it_was(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    old = SparseAutoencoder(
        SAEConfig(d_in=16, d_sae=64, architecture="jumprelu", jumprelu_init_threshold=0.001, jumprelu_bandwidth=0.001)
    )
    base.save(old, tmp_path)
    config = json.loads((tmp_path / constants.CONFIG_FILE).read_text())
    del config["jumprelu_sparsity"]  # as written before these existed
    (tmp_path / constants.CONFIG_FILE).write_text(json.dumps(config))
    tensors = load_file(tmp_path / constants.WEIGHTS_FILE)
    for name in ("threshold_scale", "penalty_scale", "bandwidth"):
        del tensors[name]
    save_file(tensors, tmp_path / constants.WEIGHTS_FILE)
    loaded = base.load(tmp_path)
    assert loaded.config.jumprelu_sparsity == "step" and float(loaded.bandwidth) == pytest.approx(0.001)
    x, _ = planted(n=32)
    with torch.no_grad():
        assert torch.equal(loaded.eval().encode(x), old.eval().encode(x))


def test_decoder_gradient_loses_its_component_along_each_row():
    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=4, k=2))
    sae.W_dec.grad = sae.W_dec.detach().clone() * 3 + torch.randn(4, 8)
    sae.before_optimizer_step()
    assert torch.allclose((sae.W_dec.grad * sae.W_dec).sum(1), torch.zeros(4), atol=1e-5)


def test_batchtopk_is_per_token_at_inference_and_round_trips(tmp_path):
    torch.manual_seed(0)
    x, _ = planted(n=1024)
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture="batchtopk", k=3))
    train.fit(sae, x, config=train.TrainConfig(steps=200, batch_size=256, lr=3e-3, warmup=10))
    sae.eval()
    with torch.no_grad():
        alone = torch.cat([sae.encode(x[i : i + 1]) for i in range(8)])
        together = sae.encode(x[:8])
    # a token's latents do not depend on its batch (up to float rounding of batched matmuls)
    assert torch.equal(alone > 0, together > 0) and torch.allclose(alone, together, atol=1e-5)
    assert float(sae.threshold.min()) > 0
    with torch.no_grad():  # the threshold is the final batches' smallest kept value: inference L0 near k
        assert 2.5 <= float((sae.encode(x) > 0).float().sum(-1).mean()) <= 3.5
    base.save(sae, tmp_path)
    loaded = base.load(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded.encode(x[:8]), together)


def test_auxk_weighs_in_the_loss_as_in_gao_et_als_reference():
    """OpenAI's reference: MSE / Var(x) + α · MSE(ê, e) / Var(e), e the residual and ê its reconstruction by
    the top-k_aux dead latents; ours is that loss times Var(x) (the main term stays the plain MSE)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(256, 16) * 3 + 2
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, k=4, aux_k=8, dead_after=1)).train()
    sae.prepare(x)
    sae.since_fired.zero_()
    sae.since_fired[:32] = 10  # half the latents dead
    loss = sae(x).loss.detach()
    with torch.no_grad():
        target, z = x * sae.input_scale, sae.pre_activations(x)
        values, indices = z.topk(4, dim=-1)
        x_hat = torch.zeros_like(z).scatter(-1, indices, values.relu()) @ sae.W_dec + sae.b_dec
        residual = target - x_hat
        values, indices = z[:, :32].topk(8, dim=-1)  # the dead latents' strongest
        residual_hat = torch.zeros_like(z).scatter(-1, indices, values.relu()) @ sae.W_dec

        def variance(v):  # per element, as the reference's normalized_mse
            return (v - v.mean(0)).pow(2).mean()

        reference = F.mse_loss(x_hat, target) / variance(target)
        reference += sae.config.aux_coefficient * F.mse_loss(residual_hat, residual) / variance(residual)
        per_token_variance = (target - target.mean(0)).pow(2).sum(-1).mean()
    assert float(loss) / float(per_token_variance) == pytest.approx(float(reference), rel=1e-4)


def test_batchtopk_training_decodes_its_kept_latents_as_the_dense_product_would():
    torch.manual_seed(0)
    x = torch.randn(64, 16) * 4 + 1
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=48, architecture="batchtopk", k=3)).train()
    sparse = sae(x)  # the first call sets b_dec and the input scale
    sparse.loss.backward()
    grads = [p.grad.clone() for p in (sae.W_enc, sae.W_dec, sae.b_enc)]
    sae.zero_grad()
    f = sae.activate(sae.pre_activations(x))
    dense = (f @ sae.W_dec + sae.b_dec - x * sae.input_scale).pow(2).sum(-1).mean()  # no latent dead: no AuxK
    assert sparse.metrics["mse"] == pytest.approx(float(dense.detach()), rel=1e-5)
    dense.backward()
    for sparse_grad, p in zip(grads, (sae.W_enc, sae.W_dec, sae.b_enc), strict=True):
        assert torch.allclose(sparse_grad, p.grad, atol=1e-4)
    assert sparse.metrics["l0"] == pytest.approx(3.0, abs=0.05)


def test_capture_leaves_sinks_out_of_training_but_keeps_them_in_their_texts(store, tiny_llama):
    import pandas as pd

    from latentviz import activations, backbones, settings

    texts = ["the price rose sharply today", "markets fell while the index held", "a third short text"]
    store.add_dataset("news", "test", pd.DataFrame({"text": texts}))
    # factor 1: every token above the median norm counts as a sink, so about half are masked
    capture_id = activations.capture(store, "news", tiny_llama, 2, site="mlp_out", sink_factor=1.0)
    text_ids, states = activations.load(store, capture_id)
    everything = store.text_tokens(capture_id, store.texts("news")["id"].tolist())
    masked = everything[~everything["captured"]]
    assert len(states) == len(text_ids) == everything["captured"].sum() and 0 < len(masked) < len(everything)
    model = backbones.shared(tiny_llama, settings.cache_dir(store.path))
    rows, positions, tokens, reference = backbones.token_states(model, texts, layer=2, site="mlp_out")
    for row, text_id in enumerate(store.texts("news")["id"]):  # every token of every text, in order
        order = np.argsort(positions[rows == row])
        assert (
            everything[everything["text_id"] == text_id]["token"].tolist()
            == np.asarray(tokens)[rows == row][order].tolist()
        )
    kept = ~activations.sink_mask(reference, 1.0)
    assert np.allclose(
        np.sort(states, axis=0), np.sort(reference[kept], axis=0), atol=1e-5
    )  # the MLP output, sinks left out


class _Splice:
    """Stands in for an SAE in the splice: x̂ = fill(x)."""

    def __init__(self, fill, layer=2, site="resid_post"):
        from types import SimpleNamespace

        self.config, self.fill = SimpleNamespace(layer=layer, site=site), fill

    def encode(self, x):
        return x

    def decode(self, f):
        return self.fill(f)


SPLICE_TEXTS = ["the price rose sharply today", "markets fell while the index held firm", "a short text"]


@pytest.mark.parametrize("keep_sinks", [True, False])
def test_identity_splice_recovers_everything_and_a_zero_sae_nothing(tiny_llama, tmp_path, keep_sinks):
    from latentviz import backbones
    from latentviz.fit import sae as fit_sae

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    identity = fit_sae.spliced_losses(lm, tokenizer, SPLICE_TEXTS, _Splice(lambda x: x), keep_sinks)
    assert identity["ce_sae"] == identity["ce_clean"] != identity["ce_zero_ablation"]
    assert metrics.ce_loss_recovered(**identity) == 1.0
    # an SAE that outputs zeros replaces the same positions the zero run ablates: recovered is exactly 0
    zeros = fit_sae.spliced_losses(lm, tokenizer, SPLICE_TEXTS, _Splice(torch.zeros_like), keep_sinks)
    assert zeros["ce_sae"] == zeros["ce_zero_ablation"] and metrics.ce_loss_recovered(**zeros) == 0.0


def test_the_zero_run_ablates_the_texts_tokens_and_spares_special_tokens_and_masked_sinks(tiny_llama, tmp_path):
    from latentviz import activations, backbones
    from latentviz.fit import sae as fit_sae

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    seen = []

    def zeros(hidden, text):
        seen.append(text)
        return torch.where(text[..., None], torch.zeros_like(hidden), hidden)

    every_text_token = backbones.next_token_loss(lm, tokenizer, SPLICE_TEXTS, 2, zeros)
    assert fit_sae.spliced_losses(lm, tokenizer, SPLICE_TEXTS, _Splice(torch.zeros_like), True)["ce_zero_ablation"] == (
        every_text_token
    )
    (text,) = seen  # one batch; its tokenizer's [CLS] and [SEP] (and the padding) are not the texts' own
    ids = tokenizer(SPLICE_TEXTS, padding=True, return_tensors="pt")["input_ids"]
    assert torch.equal(text, ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids)))
    assert not text[:, 0].any() and int(text.sum()) == sum(len(tokenizer.tokenize(t)) for t in SPLICE_TEXTS)
    hidden = torch.randn(40, 8)
    hidden[[3, 17]] *= 50  # two sinks
    spared = ~fit_sae.replaced_positions(hidden, torch.ones(40, dtype=torch.bool), keep_sinks=False)
    assert spared.nonzero().flatten().tolist() == [3, 17] == activations.sink_mask(hidden.numpy()).nonzero()[0].tolist()
    some = torch.arange(40) >= 2  # the first two positions are special: never replaced, sinks kept or not
    assert fit_sae.replaced_positions(hidden, some, keep_sinks=True).tolist() == some.tolist()


def test_a_splice_that_puts_back_the_layers_own_activations_changes_nothing(tiny_llama, tmp_path):
    """The reconstruction goes in exactly where it was read: layer L's clean states spliced in at L give
    the clean loss to the last bit (spliced in one block later, they would not)."""
    from latentviz import backbones
    from latentviz.fit import sae as fit_sae

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    batch = tokenizer(SPLICE_TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = lm(**batch, output_hidden_states=True).hidden_states  # [L]: block L's output
    for layer in (1, 2):
        clean_at_layer = states[layer].reshape(-1, 32)
        figures = fit_sae.spliced_losses(
            lm, tokenizer, SPLICE_TEXTS, _Splice(lambda _, s=clean_at_layer: s, layer=layer), keep_sinks=True
        )
        assert figures["ce_sae"] == figures["ce_clean"]
    earlier = states[1].reshape(-1, 32)  # layer 1's states put in at layer 2: not the same forward pass
    figures = fit_sae.spliced_losses(lm, tokenizer, SPLICE_TEXTS, _Splice(lambda _: earlier, layer=2), keep_sinks=True)
    assert figures["ce_sae"] != figures["ce_clean"]


def test_layer_0_is_refused_with_one_line(store, tiny_llama, tmp_path):
    import pandas as pd
    import specs

    from latentviz import backbones, fit

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    with pytest.raises(LatentvizError, match="layer 0 is the token embeddings"):
        backbones.next_token_loss(lm, tokenizer, SPLICE_TEXTS, 0, lambda hidden, text: torch.zeros_like(hidden))
    store.add_dataset("news", "test", pd.DataFrame({"text": SPLICE_TEXTS * 5}))
    with pytest.raises(LatentvizError, match="pick a layer of 1 or more"):
        fit.sae.train(store, specs.sae("news", backbone=tiny_llama, layer=0))
    assert store.models().empty


def test_an_sae_on_an_lm_family_latentviz_does_not_know_is_refused_before_any_capture(store, tiny_llama, monkeypatch):
    import pandas as pd
    import specs

    from latentviz import architectures, fit

    monkeypatch.delitem(architectures.FAMILIES, "llama")  # as if Llama were a family it had never seen
    store.add_dataset("news", "test", pd.DataFrame({"text": SPLICE_TEXTS * 5}))
    with pytest.raises(LatentvizError, match="keep their final norm and unembedding.*token VQ codebook"):
        fit.sae.train(store, specs.sae("news", backbone=tiny_llama, layer=2))
    assert store.captures().empty and store.models().empty


def test_a_run_whose_curves_show_too_high_a_rate_is_told_so():
    from latentviz.fit.sae import rate_warning

    falling = [{"step": s, "fvu": f, "dead": 0.02} for s, f in [(100, 0.4), (200, 0.3), (300, 0.25)]]
    assert rate_warning(falling, 8e-3) is None
    rising = falling + [{"step": 400, "fvu": 0.31, "dead": 0.02}]
    assert rate_warning(rising, 8e-3) == (
        "held-out FVU rose from 0.25 (step 300) to 0.31: the learning rate 0.008 is likely too high for these "
        "activations; try 0.003"
    )
    dying = [{**row, "dead": 0.3} for row in falling]
    assert rate_warning(dying, 3e-2).startswith("30% of the latents went dead: the learning rate 0.03")
    assert rate_warning([], 1e-3) is None


def test_the_rate_follows_the_width_unless_given_and_is_stored_as_used(store, tiny_llama):
    import pandas as pd
    import specs

    from latentviz import fit, runs

    # 1/√latents, anchored at the width it was chosen on (Gao et al.; docs/defaults.md)
    assert runs.sae_lr(runs.SAERun()) == pytest.approx(8e-3)
    assert runs.sae_lr(specs.sae("x", model={"d_sae": 2048})) == pytest.approx(1.2e-2)
    assert runs.sae_lr(specs.sae("x", model={"d_sae": 2048}, training={"lr": 1e-3})) == 1e-3
    store.add_dataset("news", "test", pd.DataFrame({"text": SPLICE_TEXTS * 5}))
    run = specs.sae("news", backbone=tiny_llama, layer=2, model={"d_sae": 32, "k": 4}, training={"steps": 2})
    model_id = fit.sae.train(store, run)
    stored = runs.from_record(store.model(model_id))
    assert stored.training.lr == pytest.approx(8e-3 * (4608 / 32) ** 0.5)  # info and resume see the rate used
