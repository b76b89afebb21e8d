import pytest
import torch

from latentviz import train
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.models.vq import SentenceVQ, VQConfig


def config(**overrides):
    return train.TrainConfig(
        **{
            "steps": 40,
            "batch_size": 32,
            "lr": 3e-3,
            "warmup": 5,
            "eval_every": 10,
            "checkpoint_every": 20,
            **overrides,
        }
    )


def model():
    torch.manual_seed(0)
    return SentenceVQ(VQConfig(d_in=16, groups=2, d_code=4, hidden=32, codebook_size=16, quantizer="vq"))


def data():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(300, 16, generator=generator)


def test_schedule_and_batches_are_pure_functions_of_the_step():
    c = config(steps=100, warmup=10)
    assert train.lr_at(0, c) == pytest.approx(c.lr / 10) and train.lr_at(9, c) == pytest.approx(c.lr)
    assert train.lr_at(99, c) == pytest.approx(c.lr * 0.1, rel=0.01)
    # a run shorter than ten warm-ups still reaches its peak, a tenth of the way in
    short = config(steps=100, warmup=100)
    assert train.lr_at(9, short) == pytest.approx(c.lr) and max(train.lr_at(s, short) for s in range(100)) == c.lr
    assert torch.equal(train.batch_at(7, 300, c), train.batch_at(7, 300, c))
    assert not torch.equal(train.batch_at(7, 300, c), train.batch_at(8, 300, c))


def test_training_lowers_the_held_out_loss():
    x = data()
    history = train.fit(model(), x[:250], config=config(steps=200), held_out=x[250:])
    assert history[-1]["reconstruction"] < history[0]["reconstruction"]
    assert [h["step"] for h in history][:3] == [10, 20, 30]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    x = data()
    whole = model()
    train.fit(whole, x, config=config(), folder=tmp_path / "whole")

    def interrupt_at_25(step, total, metrics):  # after the step-20 checkpoint, before the next
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(model(), x, config=config(), held_out=x[:50], folder=tmp_path / "split", progress=interrupt_at_25)
    resumed = model()
    history = train.fit(resumed, x, config=config(), held_out=x[:50], folder=tmp_path / "split")
    assert [h["step"] for h in history] == [10, 20, 30, 40]  # the history before the interruption is kept
    for name, tensor in whole.state_dict().items():
        assert torch.allclose(tensor, resumed.state_dict()[name], atol=1e-6), name
    assert base.load(tmp_path / "split").config == whole.config


def test_bad_train_config():
    with pytest.raises(LatentvizError, match="steps must be at least 1"):
        train.TrainConfig(steps=0)


def _stopped_and_resumed(make, data, config, folder):
    """The model after an uninterrupted run, and after the same run stopped at step 30 and resumed."""

    def stop_at_30(step, total, metrics):
        if step == 30:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    whole = make()
    train.fit(whole, data, config=config, held_out=data, folder=folder / "whole")
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train.fit(make(), data, config=config, held_out=data, folder=folder / "split", progress=stop_at_30)
    torch.manual_seed(123)  # a resumed process starts from some other random state
    resumed = make()
    train.fit(resumed, data, config=config, held_out=data, folder=folder / "split")
    return whole, resumed


def test_a_resumed_vae_with_dropout_ends_bit_identical(tmp_path):
    from latentviz.models.vae import TextVAE, VAEConfig
    from latentviz.vocab import Vocab

    texts = [f"the {w} rose {i} points today" for i, w in enumerate(["price", "index", "rate", "stock"] * 10)]
    vocab = Vocab.build(texts, size=100, min_count=1)
    data = (vocab.encode(texts, 8), torch.zeros(len(texts), 1))
    vae_config = VAEConfig(
        vocab=vocab.tokens,
        variant="rnn",
        latent_dim=4,
        embed_dim=8,
        hidden=16,
        max_len=8,
        dropout=0.3,
        word_dropout=0.3,
    )
    whole, resumed = _stopped_and_resumed(lambda: TextVAE(vae_config), data, config(steps=60), tmp_path)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_a_resumed_sae_ends_bit_identical(tmp_path):
    from latentviz.models.sae import SAEConfig, SparseAutoencoder

    x = torch.randn(512, 16, generator=torch.Generator().manual_seed(3))
    sae_config = SAEConfig(d_in=16, d_sae=32, k=4, dead_after=64)
    whole, resumed = _stopped_and_resumed(lambda: SparseAutoencoder(sae_config), x, config(steps=60), tmp_path)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
