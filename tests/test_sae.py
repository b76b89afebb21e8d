import numpy as np
import pytest
import torch

from latentviz import constants, metrics, train
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.models.sae import JUMPRELU_RELATIVE_BANDWIDTH, SAEConfig, SparseAutoencoder, geometric_median


def test_sae_metrics_on_known_answers():
    f = np.array([[0, 2, 0], [1, 1, 0], [0, 0, 0], [3, 0, 0]])
    assert metrics.l0(f) == (1 + 2 + 0 + 1) / 4
    counts = metrics.firing_counts(f)
    assert counts.tolist() == [2, 2, 0] and metrics.dead_latents(counts) == 1
    x = np.array([[1.0, 0.0], [3.0, 0.0], [1.0, 2.0], [3.0, 2.0]])  # mean (2, 1): Σ‖x − x̄‖² = 4 · 2 = 8
    x_hat = x + np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # Σ‖x − x̂‖² = 2
    assert metrics.fraction_of_variance_unexplained(x, x_hat) == pytest.approx(0.25)
    assert metrics.explained_variance(x, x_hat) == pytest.approx(0.75)
    assert metrics.fraction_of_variance_unexplained(x, np.tile(x.mean(0), (4, 1))) == pytest.approx(
        1.0
    )  # the mean explains nothing
    assert metrics.mean_cosine(x, 2 * x) == pytest.approx(1.0) and metrics.mean_cosine(x[:1], -x[:1]) == pytest.approx(
        -1.0
    )
    # a huge offset shared by every token changes no FVU computed as a ratio of sums
    assert metrics.fraction_of_variance_unexplained(x + 1e6, x_hat + 1e6) == pytest.approx(0.25, rel=1e-6)
    hist, edges = metrics.log_density_histogram(np.array([1, 10, 100, 0]), tokens=100, bins=2)
    assert hist.tolist() == [1, 2] and edges.tolist() == [-2.0, -1.0, 0.0]
    assert metrics.ce_loss_recovered(ce_clean=2.0, ce_sae=2.5, ce_zero_ablation=7.0) == pytest.approx(0.9)
    assert metrics.delta_lm_loss(2.0, 2.5) == pytest.approx(0.5)


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
        l0_coefficient=0.1,
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


def test_jumprelu_starts_at_l0_k_and_its_quadratic_penalty_is_zero_there():
    x, _ = planted(n=2048)
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture="jumprelu", k=4))
    sae.train()
    first = sae(x)  # the first batch sets the threshold: 4 of every 64 tokens pass each latent's
    assert first.metrics["l0"] == pytest.approx(4, abs=0.1)
    z = sae.pre_activations(x).detach()
    assert float(sae.bandwidth) == pytest.approx(JUMPRELU_RELATIVE_BANDWIDTH * float(z.std()), rel=1e-5)
    # the loss is the MSE plus 1 · 2/k · (L0 − k)² per token (zero for tokens at L0 = k), weighed
    # by the data's variance per dimension
    centred = x - sae.b_dec.detach()
    variance = float((centred - centred.mean(0)).pow(2).sum(1).mean()) / 16
    active = (z > sae.jump_threshold()).float().sum(-1)
    penalty = variance * (2 / 4 * (active - 4).pow(2)).mean()
    assert float(first.loss.detach()) == pytest.approx(first.metrics["mse"] + float(penalty), rel=1e-5)
    # a checkpoint written before the quadratic penalty keeps training with the linear one
    assert SparseAutoencoder.config_from({"architecture": "jumprelu"}).jumprelu_sparsity == "step"


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


@pytest.mark.parametrize("architecture", ["standard", "topk", "batchtopk", "jumprelu"])
def test_saelens_layout_round_trips_and_computes_the_same(architecture, tmp_path):
    import json

    from safetensors.torch import load_file

    from latentviz import saelens

    torch.manual_seed(0)
    x, _ = planted(n=512)
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, architecture=architecture, k=3, normalize_input=True))
    train.fit(sae, x, config=train.TrainConfig(steps=30, batch_size=128, lr=3e-3, warmup=5))
    sae.eval()
    saelens.export(sae, tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "cfg.json").read_text())
    assert (
        cfg["d_in"] == 16 and cfg["d_sae"] == 64 and cfg["metadata"]["hook_name"] == "blocks.7.hook_resid_post"
    )  # blocks count from 0
    assert set(load_file(tmp_path / "out" / "sae_weights.safetensors")) >= {"W_enc", "W_dec", "b_enc", "b_dec"}
    back, _ = saelens.read(tmp_path / "out", d_in=16)
    assert (back.config.layer, back.config.site) == (8, "resid_post")
    with torch.no_grad():
        assert torch.allclose(back.encode(x[:32]), sae.encode(x[:32]), atol=1e-5)
        assert torch.allclose(back.decode(back.encode(x[:32])), sae.decode(sae.encode(x[:32])), atol=1e-5)
    saelens.export(back, tmp_path / "again")  # written again: identical weights
    first, second = (load_file(tmp_path / name / "sae_weights.safetensors") for name in ("out", "again"))
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_saelens_hook_names_map_to_our_layers_and_sites(tmp_path):
    from latentviz import saelens
    from latentviz.models.base import CheckpointError

    assert saelens.layer_and_site("blocks.7.hook_resid_post", tmp_path) == (8, "resid_post")
    assert saelens.layer_and_site("blocks.8.hook_resid_pre", tmp_path) == (8, "resid_post")  # the same vectors
    assert saelens.layer_and_site("blocks.3.hook_mlp_out", tmp_path) == (4, "mlp_out")
    assert (
        saelens.hook_name(4, "attn_out") == "blocks.3.hook_attn_out"
        and saelens.hook_name(0, "resid_post") == "blocks.0.hook_resid_pre"
    )
    with pytest.raises(CheckpointError, match="hook 'blocks.3.attn.hook_z' is not one latentviz can read"):
        saelens.layer_and_site("blocks.3.attn.hook_z", tmp_path)


# -- folders written as SAELens 6 writes them (sae_lens/saes/sae.py: save_inference_model, save_model) --

SMOLLM2_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"


def saelens_folder(folder, cfg, tensors):
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: t.contiguous() for name, t in tensors.items()}, folder / "sae_weights.safetensors")
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


def saelens_topk(d_in=16, d_sae=64, seed=0, decoder_norms=None):
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    if decoder_norms is not None:
        W_dec = W_dec * decoder_norms[:, None]
    return {
        "W_enc": torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        "W_dec": W_dec,
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "b_dec": torch.randn(d_in, generator=g) * 0.1,
    }


def saelens_topk_forward(tensors, x, k, rescale):
    """SAELens's TopK SAE (TopKSAE.encode/decode), written out: with rescale_acts_by_decoder_norm the
    pre-activations are scaled by the decoder norms before the top k, and divided by them again."""
    norms = tensors["W_dec"].norm(dim=1)
    pre = (x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]
    if rescale:
        pre = pre * norms
    values, indices = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))
    return f, (f / norms if rescale else f) @ tensors["W_dec"] + tensors["b_dec"]


def metadata(hook="blocks.7.hook_resid_post", model=SMOLLM2_HUB):
    return {
        "sae_lens_version": "6.54.12",
        "sae_lens_training_version": "6.54.12",
        "model_name": model,
        "hook_name": hook,
        "hook_head_index": None,
        "context_size": 128,
        "prepend_bos": True,
    }


def test_a_saelens_6_inference_folder_lands_on_its_layer_and_backbone(tmp_path):
    from latentviz import saelens

    tensors = saelens_topk()
    cfg = {
        "architecture": "topk",
        "d_in": 16,
        "d_sae": 64,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "k": 4,
        "rescale_acts_by_decoder_norm": False,
        "metadata": metadata(),
    }
    sae, where = saelens.read(saelens_folder(tmp_path / "inference", cfg, tensors))
    assert (sae.config.layer, sae.config.site, sae.config.model_name) == (8, "resid_post", "smollm2")
    assert str(where).startswith("layer 8 resid_post of smollm2, from metadata.hook_name blocks.7.hook_resid_post")
    x = torch.randn(32, 16)
    f, x_hat = saelens_topk_forward(tensors, x, 4, rescale=False)
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), f, atol=1e-5) and torch.allclose(
            sae.decode(sae.encode(x)), x_hat, atol=1e-5
        )
    # the layout before 6: hook and model at the top level
    old = {k: v for k, v in cfg.items() if k != "metadata"} | {
        "hook_name": "blocks.2.hook_mlp_out",
        "model_name": "gpt2",
    }
    sae, where = saelens.read(saelens_folder(tmp_path / "old", old, tensors))
    assert (sae.config.layer, sae.config.site, sae.config.model_name) == (3, "mlp_out", "gpt2")
    assert "from hook_name blocks.2.hook_mlp_out and model_name gpt2" in str(where)


@pytest.mark.parametrize("architecture", ["topk", "batchtopk"])
def test_a_saelens_trainer_checkpoint_has_its_decoder_norms_folded_in(tmp_path, architecture):
    from latentviz import metrics, saelens

    norms = torch.linspace(0.1, 1.1, 64)  # a trainer checkpoint: rows not normalised
    tensors = saelens_topk(decoder_norms=norms)
    cfg = {
        "architecture": architecture,
        "d_in": 16,
        "d_sae": 64,
        "k": 4,
        "rescale_acts_by_decoder_norm": True,
        "aux_loss_coefficient": 1.0,
        "decoder_init_norm": 0.1,
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "metadata": metadata(),
    }
    if architecture == "batchtopk":
        tensors["topk_threshold"] = torch.tensor(0.05)
    sae, _ = saelens.read(saelens_folder(tmp_path / "checkpoint", cfg, tensors))
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)
    x = torch.randn(256, 16) * 2
    with torch.no_grad():
        ours = sae.decode(sae.encode(x))
    if architecture == "topk":
        f, theirs = saelens_topk_forward(tensors, x, 4, rescale=True)
        assert torch.equal(sae.encode(x) > 0, f > 0)  # the same latents fire on every token
        assert torch.allclose(ours, theirs, atol=1e-4)
        assert metrics.fraction_of_variance_unexplained(x.numpy(), ours.numpy()) == pytest.approx(
            metrics.fraction_of_variance_unexplained(x.numpy(), theirs.numpy()), rel=1e-4
        )
        # reading the checkpoint without the fold picks other latents: the fault this guards against
        unfolded = (x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]
        assert not torch.equal(unfolded.topk(4).indices.sort().values, f.topk(4).indices.sort().values)
    else:  # at inference SAELens's BatchTopK is a JumpReLU at its one threshold, on rescaled pre-activations
        pre = ((x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]) * norms
        f = pre * (pre > 0.05)
        assert torch.allclose(ours, (f / norms) @ tensors["W_dec"] + tensors["b_dec"], atol=1e-4)


def test_what_the_cfg_does_not_say_comes_from_flags_and_is_never_guessed(tmp_path):
    from latentviz import saelens
    from latentviz.models.base import CheckpointError

    tensors = saelens_topk()
    bare = saelens_folder(tmp_path / "bare", {"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4}, tensors)
    with pytest.raises(CheckpointError, match="names no hook .*add --layer L"):
        saelens.read(bare)
    with pytest.raises(CheckpointError, match="names no model .*add --backbone B"):
        saelens.read(bare, layer=5)
    sae, where = saelens.read(bare, layer=5, site="attn_out", backbone="smollm2")
    assert (sae.config.layer, sae.config.site, sae.config.model_name) == (5, "attn_out", "smollm2")
    assert str(where) == "layer 5 attn_out of smollm2, from --layer and --site and --backbone"
    named = saelens_folder(
        tmp_path / "named", {"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4, "metadata": metadata()}, tensors
    )
    with pytest.raises(CheckpointError, match="means layer 8, but --layer 5 was given"):
        saelens.read(named, layer=5)
    assert saelens.read(named, layer=8)[0].config.layer == 8
    for normalization in ("layer_norm", "constant_norm_rescale"):
        cfg = {
            "architecture": "topk",
            "d_in": 16,
            "d_sae": 64,
            "k": 4,
            "metadata": metadata(),
            "normalize_activations": normalization,
        }
        with pytest.raises(CheckpointError, match=f"normalize_activations '{normalization}' rescales each token"):
            saelens.read(saelens_folder(tmp_path / normalization, cfg, tensors))
    cfg["normalize_activations"] = "expected_average_only_in"
    assert saelens.read(saelens_folder(tmp_path / "folded", cfg, tensors))[0].config.layer == 8


def test_our_export_is_in_saelens_6_layout(tmp_path):
    import json

    from latentviz import saelens

    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2, layer=8, model_name="smollm2"))
    cfg = json.loads((saelens.export(sae, tmp_path / "out") / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == "blocks.7.hook_resid_post" and cfg["metadata"]["model_name"] == SMOLLM2_HUB
    assert cfg["metadata"]["sae_lens_version"].startswith("6.") and "hook_name" not in cfg
    assert cfg["architecture"] == "topk" and cfg["k"] == 2 and cfg["rescale_acts_by_decoder_norm"] is False
    back, where = saelens.read(tmp_path / "out")
    assert back.config.model_name == "smollm2" and "metadata.model_name " + SMOLLM2_HUB in str(where)


def test_saelens_folders_that_do_not_fit_get_one_clear_error(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from latentviz import saelens
    from latentviz.models.base import CheckpointError

    folder = saelens.export(SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2)), tmp_path / "sae")
    with pytest.raises(CheckpointError, match="reads 16-wide activations, but the chosen layer is 576 wide"):
        saelens.read(folder, d_in=576)
    tensors = load_file(folder / "sae_weights.safetensors")
    del tensors["b_dec"]
    save_file(tensors, folder / "sae_weights.safetensors")
    with pytest.raises(CheckpointError, match="missing tensor b_dec"):
        saelens.read(folder)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        saelens.read(folder)
    (folder / "sae_weights.safetensors").write_bytes(b"\x80\x04pickle?")
    (folder / "cfg.json").write_text(
        json.dumps(
            {
                "d_in": 16,
                "d_sae": 32,
                "architecture": "topk",
                "k": 2,
                "hook_name": "blocks.1.hook_mlp_out",
                "model_name": "gpt2",
            }
        )
    )
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        saelens.read(folder)


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


def test_the_zero_run_ablates_every_position_and_only_sinks_are_spared_when_they_were_masked(tiny_llama, tmp_path):
    from latentviz import activations, backbones
    from latentviz.fit import sae as fit_sae

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    everything = backbones.next_token_loss(lm, tokenizer, SPLICE_TEXTS, 2, torch.zeros_like)
    assert fit_sae.spliced_losses(lm, tokenizer, SPLICE_TEXTS, _Splice(torch.zeros_like), True)["ce_zero_ablation"] == (
        everything
    )
    hidden = torch.randn(40, 8)
    hidden[[3, 17]] *= 50  # two sinks
    spared = ~fit_sae.replaced_positions(hidden, keep_sinks=False)
    assert spared.nonzero().flatten().tolist() == [3, 17] == activations.sink_mask(hidden.numpy()).nonzero()[0].tolist()
    assert fit_sae.replaced_positions(hidden, keep_sinks=True).all()


def test_layer_0_is_refused_with_one_line(store, tiny_llama, tmp_path):
    import pandas as pd
    import specs

    from latentviz import backbones, fit

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    with pytest.raises(LatentvizError, match="layer 0 is the token embeddings"):
        backbones.next_token_loss(lm, tokenizer, SPLICE_TEXTS, 0, torch.zeros_like)
    store.add_dataset("news", "test", pd.DataFrame({"text": SPLICE_TEXTS * 5}))
    with pytest.raises(LatentvizError, match="pick a layer of 1 or more"):
        fit.sae.train(store, specs.sae("news", backbone=tiny_llama, layer=0))
    assert store.models().empty
