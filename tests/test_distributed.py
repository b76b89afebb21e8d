"""One SAE trained by two processes (gloo on CPU) against the same SAE trained by one, on the same
batches: equal to float tolerance, for TopK with AuxK live (the dead-latent count and AuxK's
normaliser combined over the processes) and BatchTopK (its threshold over the whole batch); a
two-process run stopped and resumed ends where an uninterrupted one does; and `torchrun -m latentviz
train sae` writes one model to the workspace, equal to the one-process run's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from serving import free_port

from latentviz import train as loop
from latentviz.models import base
from latentviz.models.sae import SAEConfig, SparseAutoencoder

STEPS, STOP_AT = 12, 5


def data() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(512, 16) @ torch.randn(16, 16)


def config(architecture: str) -> SAEConfig:
    # 256 latents, 4 a token, 64 tokens a batch: many stay silent for the two batches (128 tokens) that
    # make a latent dead, so AuxK is live from the third step
    return SAEConfig(d_in=16, d_sae=256, k=4, architecture=architecture, aux_k=8, dead_after=128)


def settings() -> loop.TrainConfig:
    return loop.TrainConfig(steps=STEPS, batch_size=64, lr=3e-3, warmup=2, eval_every=100, checkpoint_every=100)


class Stop(Exception):
    pass


def _rank(rank: int, world: int, port: int, architecture: str, folder: str, stop_at: int | None, out: str) -> None:
    """One process of a two-process run: join the group, train, and (process 0) save the SAE."""
    from latentviz import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    distributed.start()

    def stop(step, total, figures):
        if step == stop_at:
            raise Stop

    torch.manual_seed(0)
    sae = SparseAutoencoder(config(architecture))
    try:
        loop.fit(sae, data(), config=settings(), folder=folder, progress=stop)
    except Stop:
        pass
    distributed.finish()
    if rank == 0:
        base.save(sae, out)


def two_processes(architecture: str, tmp_path, name: str, stop_at: int | None = None, folder=None) -> SparseAutoencoder:
    """Process 0 and 1 of a run, each a fresh interpreter started as torchrun would start it."""
    out, folder, port = tmp_path / name, folder or tmp_path / f"{name}-run", free_port()
    call = f"_rank({{}}, 2, {port}, {architecture!r}, {str(folder)!r}, {stop_at!r}, {str(out)!r})"
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from test_distributed import _rank; "
    ranks = [subprocess.Popen([sys.executable, "-c", code + call.format(rank)]) for rank in (0, 1)]
    assert [process.wait(timeout=300) for process in ranks] == [0, 0]
    return base.load(out)


def one_process(architecture: str) -> SparseAutoencoder:
    torch.manual_seed(0)
    sae = SparseAutoencoder(config(architecture))
    loop.fit(sae, data(), config=settings())
    return sae


def assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, mine), theirs in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(mine.float(), theirs.float(), rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("architecture", ["topk", "batchtopk"])
def test_two_processes_train_the_sae_one_process_trains(architecture, tmp_path):
    alone = one_process(architecture)
    assert int((alone.since_fired >= 128).sum()) > 0  # AuxK had dead latents to work with
    together = two_processes(architecture, tmp_path, "together")
    assert_same(together, alone)
    assert torch.equal(together.since_fired, alone.since_fired)  # every token of every batch counted once
    if architecture == "topk":  # stopped part way and resumed, two processes end where they end unstopped
        folder = tmp_path / "stopped-run"
        stopped = two_processes(architecture, tmp_path, "stopped", stop_at=STOP_AT, folder=folder)
        assert loop.checkpoint_step(folder) == STOP_AT and not torch.equal(stopped.W_dec, alone.W_dec)
        resumed = two_processes(architecture, tmp_path, "resumed", folder=folder)
        assert loop.checkpoint_step(folder) == STEPS
        assert_same(resumed, together)


def test_torchrun_trains_one_sae_into_the_workspace_as_one_process_would(trained_copy, tiny_llama):
    from latentviz.models import base as models

    db = str(trained_copy.path)
    flags = ["train", "sae", "--db", db, "--dataset", "bbc-news", "--backbone", tiny_llama, "--layer", "2"]
    flags += ["--max-tokens", "1500", "--width", "32", "-k", "4", "--steps", "8", "--batch-size", "128"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = set(trained_copy.models()["id"])
    run = [sys.executable, "-m", "latentviz", *flags]
    assert subprocess.run(run, env=env, capture_output=True, timeout=300).returncode == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port"]
    done = subprocess.run(
        [*torchrun, str(free_port()), "-m", "latentviz", *flags], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-8000:]  # the ranks' own errors come before torchrun's summary
    assert done.stdout.count("held-out figures") == 1  # process 0 alone reports
    models_now = trained_copy.models()
    new = models_now[~models_now["id"].isin(before)].sort_values("id")
    assert len(new) == 2 and new["checkpoint"].notna().all()  # one model each, no stray rows
    alone, together = (models.load(path) for path in new["checkpoint"])
    assert_same(together, alone)
    assert len(trained_copy.training_metrics(int(new["id"].iloc[1]))) == len(
        trained_copy.training_metrics(int(new["id"].iloc[0]))
    )


def test_a_sweep_trains_one_sae_per_process_each_with_its_value(trained_copy, tiny_llama):
    db = str(trained_copy.path)
    flags = ["train", "sae", "--db", db, "--dataset", "bbc-news", "--backbone", tiny_llama, "--max-tokens", "1500"]
    flags += ["--width", "32", "-k", "4", "--steps", "4", "--batch-size", "128", "--sweep", "layer=1,3"]
    before = set(trained_copy.models()["id"])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*torchrun, str(free_port()), "-m", "latentviz", *flags], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-8000:]  # the ranks' own errors come before torchrun's summary
    assert done.stdout.count("held-out figures") == 2  # each process reports its own SAE
    models_now = trained_copy.models()
    new = models_now[~models_now["id"].isin(before)]
    assert sorted(trained_copy.model(int(i))["config"]["model"]["layer"] for i in new["id"]) == [1, 3]
    assert new["checkpoint"].notna().all()
    captures = trained_copy.captures()
    assert sorted(captures[captures["layer"].isin([1, 3])]["layer"]) == [1, 3]  # one capture each, none twice


def test_only_an_sae_trains_on_several_processes(store, monkeypatch, capsys):
    from latentviz.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "vq", "--db", str(store.path), "--dataset", "bbc-news"]) == 2
    assert "only an SAE trains on several processes" in capsys.readouterr().err
    flags = ["train", "sae", "--db", str(store.path), "--dataset", "bbc-news", "--sweep", "layer=4,8,12"]
    assert main(flags) == 2
    assert "run it with torchrun --nproc-per-node 3" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert main([*flags[:-1], "colour=4,8,12"]) == 2
    assert "no flag --colour to sweep" in capsys.readouterr().err
