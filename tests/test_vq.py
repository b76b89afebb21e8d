import pytest
import torch

from latentviz import metrics
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.models.vq import FSQ, ResidualVQ, SentenceVQ, VectorQuantizer, VQConfig, rotate_to


def blobs(n=512, k=16, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=generator) * 4
    return centres[torch.randint(k, (n,), generator=generator)] + 0.1 * torch.randn(
        n, dim, generator=generator
    ), centres


@pytest.mark.parametrize("options", [{}, {"ema": True}, {"cosine": True}, {"rotation_trick": True}])
def test_quantized_values_are_the_chosen_codes_and_gradients_reach_z(options):
    vq = VectorQuantizer(8, 32, **options)
    z = torch.randn(64, 8, requires_grad=True)
    codebook = vq.codes().detach().clone()  # EMA training moves the codebook after choosing codes
    out = vq(z)
    codes = codebook[out.indices]
    assert torch.allclose(out.z_q, codes, atol=1e-5)
    out.z_q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert out.loss.ndim == 0 and 1 <= out.stats["used"] <= 32


def test_rotation_trick_value_is_q_and_gradient_is_a_scaled_rotation():
    z = torch.randn(5, 6, requires_grad=True)
    q = torch.randn(5, 6)
    out = rotate_to(z, q)
    assert torch.allclose(out, q, atol=1e-5)
    g = torch.randn(5, 6)
    (out * g).sum().backward()
    scale = q.norm(dim=1) / z.detach().norm(dim=1)
    assert torch.allclose(z.grad.norm(dim=1), scale * g.norm(dim=1), atol=1e-4)  # rotations keep lengths


def test_kmeans_init_finds_planted_centres():
    x, centres = blobs()
    vq = VectorQuantizer(8, 16, kmeans_init=True)
    vq.train()
    vq(x)
    nearest = torch.cdist(centres, vq.codebook.detach()).min(1).values
    assert (nearest < 1.0).all()
    assert bool(vq.initialised)


def test_dead_codes_are_restarted_from_the_batch():
    x, _ = blobs()
    vq = VectorQuantizer(8, 64, ema=True, restart_dead=True, decay=0.5)
    vq.codebook.data[32:] += 1000.0  # half the codebook far away: never chosen
    vq.ema_sum.copy_(vq.codebook)
    vq.train()
    for _ in range(10):
        vq(x)
    assert vq.restarts >= 32
    assert torch.cdist(vq.codebook[32:], x).min(1).values.max() < 5.0  # re-seeded near the data


def test_ema_moves_codes_to_the_mean_of_their_inputs():
    vq = VectorQuantizer(2, 2, ema=True, decay=0.5)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    x = torch.tensor([[1.0, 1.0], [1.0, 3.0], [9.0, 9.0]])
    vq.train()
    for _ in range(30):
        vq(x)
    assert torch.allclose(vq.codebook, torch.tensor([[1.0, 2.0], [9.0, 9.0]]), atol=1e-3)


def test_fsq_codes_cover_the_implicit_codebook_and_decode_back():
    fsq = FSQ([8, 5, 5, 5])
    assert fsq.codebook_size == 1000 and not any(b.numel() >= 1000 for b in fsq.buffers())
    z = torch.randn(20000, 4)
    out = fsq(z)
    assert out.indices.min() >= 0 and out.indices.max() < 1000
    assert metrics.codebook_usage(out.indices.numpy(), 1000)["utilisation"] > 0.95
    assert torch.allclose(fsq.codes_of(out.indices), out.z_q, atol=1e-6)
    assert torch.all(out.z_q.abs() <= 1.0)


def test_residual_stages_shrink_the_error():
    x, _ = blobs(dim=8)
    rvq = ResidualVQ(8, 16, 3, ema=True, kmeans_init=True)
    rvq.train()
    out = rvq(x)
    assert out.indices.shape == (512, 3)
    residuals = [out.stats[f"stage{i}_residual"] for i in (1, 2, 3)]
    assert residuals[0] > residuals[1] > residuals[2]


@pytest.mark.parametrize("quantizer", ["vq", "vq-ema", "fsq", "rvq"])
def test_sentence_vq_round_trips_through_its_checkpoint(tmp_path, quantizer):
    model = SentenceVQ(VQConfig(d_in=16, groups=2, d_code=4, hidden=32, codebook_size=8, quantizer=quantizer))
    x = torch.randn(10, 16)
    model.train()
    model(x)
    model.eval()
    base.save(model, tmp_path)
    loaded = base.load(tmp_path)
    assert type(loaded) is SentenceVQ and loaded.config == model.config
    assert torch.equal(loaded.codes(x), model.codes(x))
    assert model.codes(x).shape[:2] == (10, 2)


def test_bad_configs_and_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(LatentvizError, match="unknown quantizer 'pq'"):
        VQConfig(quantizer="pq")
    with pytest.raises(LatentvizError, match="at least 2"):
        FSQ([8, 1])
    with pytest.raises(base.CheckpointError, match="no cfg.json"):
        base.load(tmp_path)
    model = SentenceVQ(VQConfig(d_in=16, groups=2, d_code=4, hidden=32, codebook_size=8))
    base.save(model, tmp_path)
    (tmp_path / "cfg.json").write_text((tmp_path / "cfg.json").read_text().replace('"hidden": 32', '"hidden": 64'))
    with pytest.raises(base.CheckpointError, match="does not fit its cfg.json"):
        base.load(tmp_path)
    (tmp_path / "cfg.json").write_text('{"kind": "gan"}')
    with pytest.raises(base.CheckpointError, match="unknown model kind 'gan'"):
        base.load(tmp_path)


def test_dead_codes_by_the_ema_rule_are_counted():
    vq = VectorQuantizer(2, 4, ema=True, decay=0.5, dead_share=0.5)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0], [10.0, -10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    vq.train()
    x = torch.zeros(8, 2)  # every input goes to code 0
    stats = [vq(x).stats["ema_dead"] for _ in range(3)]
    # usage of codes 1-3 halves each step from 1/4: K·usage = 0.5, 0.25, 0.125; dead once below 0.5
    assert stats == [0.0, 3.0, 3.0]
    assert vq.usage[0] > 0.5
