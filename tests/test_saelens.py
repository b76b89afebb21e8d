"""The SAELens layouts (6.x, older folders, trainer checkpoints) and Gemma Scope's params.npz, read
and written; each folder is built as that tool writes it, and each SAE's output is checked against
its own forward pass written out by hand."""

import numpy as np
import pytest
import torch
from test_sae import planted

from latentviz import train
from latentviz.models.base import CheckpointError
from latentviz.models.sae import SAEConfig, SparseAutoencoder


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
    saelens.export(sae, tmp_path / "out", prepend_bos=False)
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
    saelens.export(back, tmp_path / "again", prepend_bos=False)  # written again: identical weights
    first, second = (load_file(tmp_path / name / "sae_weights.safetensors") for name in ("out", "again"))
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_saelens_hook_names_map_to_our_layers_and_sites(tmp_path):
    from latentviz import saelens

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
    cfg["normalize_activations"] = "expected_average_only_in"  # a factor the folder does not hold
    with pytest.raises(CheckpointError, match="pass --norm-scaling-factor F"):
        saelens.read(saelens_folder(tmp_path / "scaled", cfg, tensors))


def test_our_export_is_in_saelens_6_layout(tmp_path):
    import json

    from latentviz import saelens

    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2, layer=8, model_name="smollm2"))
    cfg = json.loads((saelens.export(sae, tmp_path / "out", prepend_bos=False) / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == "blocks.7.hook_resid_post" and cfg["metadata"]["model_name"] == SMOLLM2_HUB
    assert cfg["metadata"]["sae_lens_version"].startswith("6.") and "hook_name" not in cfg
    assert cfg["architecture"] == "topk" and cfg["k"] == 2 and cfg["rescale_acts_by_decoder_norm"] is False
    back, where = saelens.read(tmp_path / "out")
    assert back.config.model_name == "smollm2" and "metadata.model_name " + SMOLLM2_HUB in str(where)


def fake_hub_repo(cache, repo_id):
    """A repository in the Hugging Face cache's layout (huggingface_hub's docs, "Manage the cache":
    refs/main names the snapshot); its snapshot folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_an_sae_in_the_local_hugging_face_cache_is_found_by_repository_and_path(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from latentviz import saelens

    cache = tmp_path / "hub"
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2, layer=8, model_name="smollm2"))
    saelens.export(sae, fake_hub_repo(cache, "someone/gpt2-saes") / "blocks.7.hook_resid_post", prepend_bos=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    back, where = saelens.read("hf:someone/gpt2-saes/blocks.7.hook_resid_post")
    assert torch.equal(back.W_enc, sae.W_enc) and where.layer == 8
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*huggingface-cli download"):
        saelens.read("hf:someone/gpt2-saes/blocks.3.hook_resid_post")
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache"):
        saelens.read("hf:someone/other-saes/layer_3")
    with pytest.raises(CheckpointError, match="write hf:OWNER/REPO/PATH"):
        saelens.read("hf:someone/gpt2-saes")


def test_saelens_folders_that_do_not_fit_get_one_clear_error(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from latentviz import saelens

    folder = saelens.export(SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2)), tmp_path / "sae", prepend_bos=False)
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


def test_a_pre_6_topk_folder_is_read_as_topk_with_its_k(tmp_path):
    """SAELens before 6 wrote a TopK SAE as architecture "standard" with activation_fn_str "topk"
    (sae_lens/loading/pretrained_sae_loaders.py: handle_pre_6_0_config)."""
    from latentviz import saelens

    tensors = saelens_topk()
    cfg = {
        "architecture": "standard",
        "d_in": 16,
        "d_sae": 64,
        "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": 4},
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "hook_point": "blocks.2.hook_resid_pre",
        "hook_point_layer": 2,
        "model_name": "gpt2",
        "prepend_bos": True,
    }
    sae, where = saelens.read(saelens_folder(tmp_path / "v5", cfg, tensors))
    assert (sae.config.architecture, sae.config.k, sae.config.layer) == ("topk", 4, 2)
    assert where.prepend_bos  # the top-level prepend_bos of these folders
    del cfg["prepend_bos"]
    assert saelens.read(saelens_folder(tmp_path / "unsaid", cfg, tensors))[1].prepend_bos  # SAELens's default
    cfg["prepend_bos"] = False
    assert not saelens.read(saelens_folder(tmp_path / "without", cfg, tensors))[1].prepend_bos
    x = torch.randn(64, 16)
    f, x_hat = saelens_topk_forward(tensors, x, 4, rescale=False)
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), f, atol=1e-5) and torch.allclose(sae.decode(f), x_hat, atol=1e-5)
        assert float((sae.encode(x) > 0).sum(-1).float().mean()) == pytest.approx(4.0)  # as SAELens: L0 = k
    cfg["activation_fn_str"] = "tanh-relu"
    with pytest.raises(CheckpointError, match="activation 'tanh-relu' is not supported"):
        saelens.read(saelens_folder(tmp_path / "other", cfg, tensors))


def test_an_sae_on_normalised_activations_reads_them_at_their_scale(tmp_path):
    """normalize_activations "expected_average_only_in": SAELens multiplies the input by a factor
    and divides the output by it (the factor from its registry, or a trainer's activation_scaler.json)."""
    import json

    from latentviz import saelens

    tensors = saelens_topk()
    cfg = {"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4, "metadata": metadata()}
    cfg["normalize_activations"] = "expected_average_only_in"
    folder = saelens_folder(tmp_path / "scaled", cfg, tensors)
    x = torch.randn(32, 16) * 7
    f, x_hat_scaled = saelens_topk_forward(tensors, x * 2.5, 4, rescale=False)
    trainer = saelens_folder(tmp_path / "trainer", cfg, tensors)  # a trainer checkpoint keeps its factor
    (trainer / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 2.5}))
    for sae in (saelens.read(folder, norm_scaling_factor=2.5)[0], saelens.read(trainer)[0]):
        with torch.no_grad():
            assert torch.allclose(sae.encode(x), f, atol=1e-4)
            assert torch.allclose(sae.decode(sae.encode(x)), x_hat_scaled / 2.5, atol=1e-4)
    exported = saelens.export(
        sae, tmp_path / "out", prepend_bos=False
    )  # the factor folded in: the export reads raw activations
    assert json.loads((exported / "cfg.json").read_text())["normalize_activations"] == "none"
    with torch.no_grad():
        assert torch.allclose(saelens.read(exported)[0].encode(x), f, atol=1e-4)
    with pytest.raises(CheckpointError, match="not normalised; leave out --norm-scaling-factor"):
        saelens.read(
            saelens.export(SparseAutoencoder(SAEConfig(d_in=16, d_sae=32, k=2)), tmp_path / "plain", prepend_bos=False),
            norm_scaling_factor=2.0,
        )


def test_a_gemma_scope_params_npz_reads_as_its_jumprelu(tmp_path):
    """Gemma Scope's own files: params.npz with W_enc, W_dec, b_enc, b_dec and threshold; the
    pre-activation is x W_enc + b_enc (no b_dec first), f = x·H(z − θ) with θ > 0."""
    from latentviz import saelens

    g = np.random.default_rng(0)
    params = {
        "W_enc": g.normal(size=(16, 64)).astype(np.float32) / 4,
        "W_dec": g.normal(size=(64, 16)).astype(np.float32),
        "b_enc": g.normal(size=64).astype(np.float32) * 0.1,
        "b_dec": g.normal(size=16).astype(np.float32),
        "threshold": g.uniform(0.05, 0.5, size=64).astype(np.float32),
    }
    folder = tmp_path / "layer_5" / "width_16k" / "average_l0_20"
    folder.mkdir(parents=True)
    np.savez(folder / "params.npz", **params)
    with pytest.raises(CheckpointError, match="Gemma Scope files name no hook or model; add --layer L"):
        saelens.read(folder)
    sae, where = saelens.read(folder, layer=6, backbone="google/gemma-2-2b")
    assert (sae.config.architecture, sae.config.layer, sae.config.site) == ("jumprelu", 6, "resid_post")
    assert str(where) == "layer 6 resid_post of google/gemma-2-2b, from --layer and --backbone"
    x = g.normal(size=(32, 16)).astype(np.float32)
    z = x @ params["W_enc"] + params["b_enc"]
    f = z * (z > params["threshold"])
    with torch.no_grad():
        ours = sae.encode(torch.from_numpy(x))
        assert np.allclose(ours.numpy(), f, atol=1e-5)
        assert np.allclose(sae.decode(ours).numpy(), f @ params["W_dec"] + params["b_dec"], atol=1e-4)
    assert saelens.read(folder / "params.npz", layer=6, backbone="google/gemma-2-2b")[0].config.d_sae == 64


def installed_registry(tmp_path, monkeypatch, releases: dict):
    """An installed sae_lens package holding only its registry, pretrained_saes.yaml, in SAELens's format
    (release → repo_id, conversion_func, model, config_overrides, saes: [{id, path, norm_scaling_factor}])."""
    import yaml

    package = tmp_path / "site" / "sae_lens"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported: its registry is read in place')\n")
    (package / "pretrained_saes.yaml").write_text(yaml.safe_dump(releases))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_a_saelens_release_is_read_as_saelens_loads_it(tmp_path, monkeypatch):
    """saelens:RELEASE/SAE_ID resolves through SAELens's own registry: its repository and path in the local
    cache, its norm_scaling_factor folded as SAE.from_pretrained folds it, its config_overrides applied;
    a release it reads differently (centred TransformerLens weights, other conversions) is refused."""
    from huggingface_hub import constants

    from latentviz import saelens

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    tensors = saelens_topk()
    cfg = {"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4, "metadata": metadata()}
    cfg["normalize_activations"] = "expected_average_only_in"
    saelens_folder(fake_hub_repo(cache, "someone/smol-saes") / "l7", cfg, tensors)
    plain = {**cfg, "normalize_activations": "none"}
    saelens_folder(fake_hub_repo(cache, "someone/centred-saes") / "l7", plain, tensors)
    entry = {"conversion_func": None, "model": "smollm2", "repo_id": "someone/smol-saes"}
    installed_registry(
        tmp_path,
        monkeypatch,
        {
            "smol-res": {
                **entry,
                "saes": [{"id": "blocks.7.hook_resid_post", "path": "l7", "norm_scaling_factor": 2.5}],
            },
            "smol-moved": {
                **entry,
                "config_overrides": {"hook_name": "blocks.3.hook_resid_post", "dataset_path": "somewhere"},
                "saes": [{"id": "sae", "path": "l7", "norm_scaling_factor": 2.5}],
            },
            "smol-centred": {
                **entry,
                "repo_id": "someone/centred-saes",
                "config_overrides": {"model_from_pretrained_kwargs": {"center_writing_weights": True}},
                "saes": [{"id": "sae", "path": "l7"}],
            },
            "smol-scope": {**entry, "conversion_func": "llama_scope", "saes": [{"id": "sae", "path": "l7"}]},
        },
    )
    x = torch.randn(32, 16) * 7
    f, x_hat_scaled = saelens_topk_forward(tensors, x * 2.5, 4, rescale=False)
    sae, where = saelens.read("saelens:smol-res/blocks.7.hook_resid_post")
    with torch.no_grad():  # the registry's factor folded in: raw activations in, SAELens's latents out
        assert torch.allclose(sae.encode(x), f, atol=1e-4)
        assert torch.allclose(sae.decode(sae.encode(x)), x_hat_scaled / 2.5, atol=1e-4)
    assert where.layer == 8
    assert saelens.read("saelens:smol-moved/sae")[1].layer == 4  # the registry's hook_name over the folder's
    with pytest.raises(CheckpointError, match="centred residual stream .*center_writing_weights"):
        saelens.read("saelens:smol-centred/sae")
    with pytest.raises(CheckpointError, match="converts this release's files with llama_scope"):
        saelens.read("saelens:smol-scope/sae")
    with pytest.raises(CheckpointError, match="no release 'smol-rez'; did you mean smol-res"):
        saelens.read("saelens:smol-rez/blocks.7.hook_resid_post")
    with pytest.raises(CheckpointError, match="has no SAE 'blocks.8.hook_resid_post'; did you mean"):
        saelens.read("saelens:smol-res/blocks.8.hook_resid_post")
    with pytest.raises(CheckpointError, match="write saelens:RELEASE/SAE_ID"):
        saelens.read("saelens:smol-res")


def test_a_gemma_scope_release_says_where_it_reads(tmp_path, monkeypatch):
    """A gemma_2 release's files (params.npz) name no hook: its repository names the site and its
    folder layer_N the block, as SAELens's conversion reads them; attention SAEs (hook_z) are refused."""
    from huggingface_hub import constants

    from latentviz import saelens

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    g = np.random.default_rng(0)
    params = {
        "W_enc": g.normal(size=(16, 64)).astype(np.float32),
        "W_dec": g.normal(size=(64, 16)).astype(np.float32),
        "b_enc": np.zeros(64, np.float32),
        "b_dec": np.zeros(16, np.float32),
        "threshold": np.full(64, 0.1, np.float32),
    }
    for repo in ("google/gemma-scope-2b-pt-mlp", "google/gemma-scope-2b-pt-att"):
        folder = fake_hub_repo(cache, repo) / "layer_5" / "width_16k" / "average_l0_20"
        folder.mkdir(parents=True)
        np.savez(folder / "params.npz", **params)
    saes = [{"id": "layer_5/width_16k/canonical", "path": "layer_5/width_16k/average_l0_20"}]
    gemma = {"conversion_func": "gemma_2", "model": "gemma-2-2b", "saes": saes}
    installed_registry(
        tmp_path,
        monkeypatch,
        {
            "gemma-scope-2b-pt-mlp-canonical": {**gemma, "repo_id": "google/gemma-scope-2b-pt-mlp"},
            "gemma-scope-2b-pt-att-canonical": {**gemma, "repo_id": "google/gemma-scope-2b-pt-att"},
        },
    )
    sae, where = saelens.read("saelens:gemma-scope-2b-pt-mlp-canonical/layer_5/width_16k/canonical")
    assert (where.layer, where.site, where.backbone) == (6, "mlp_out", "google/gemma-2-2b")
    with pytest.raises(CheckpointError, match="attention SAEs read hook_z"):
        saelens.read("saelens:gemma-scope-2b-pt-att-canonical/layer_5/width_16k/canonical")


def test_a_release_name_without_saelens_installed_says_what_to_do(monkeypatch):
    import importlib.util

    from latentviz import saelens

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match="pip install --no-deps sae-lens.*hf:OWNER/REPO/PATH"):
        saelens.read("saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre")
