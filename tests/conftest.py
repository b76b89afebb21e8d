"""Shared fixtures: tiny random backbones (fast), a small mapped workspace, fixed seeds."""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread: the tests' models are tiny, so a second thread gains little, and with two test workers
# on two cores it would only compete (one process, the whole suite: 392 s on one thread, 411 s on two).
# Set before torch loads, so the servers and workers the tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from latentviz import backbones, pipeline
from latentviz.store import Store, copy_workspace

torch.set_num_threads(1)  # where the caller had set OMP_NUM_THREADS otherwise


# The slowest files, started first: the suite runs on both cores (pytest-xdist, a file per worker at a
# time), and a slow file taken last would leave one core idle while the other finishes it.
SLOW_FIRST = (
    "test_browser.py",
    "test_app.py",
    "test_jobs.py",
    "test_backbones.py",
    "test_cli.py",
    "test_distributed.py",
    "test_package.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort: the rest keep their order


_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def _main_module():
    """AppTest runs app.py as __main__ and leaves it there; a process started with multiprocessing's
    spawn afterwards in the same worker would run app.py again on start-up (and fail)."""
    yield
    sys.modules["__main__"] = _MAIN


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """A session fixture's folder, built by the first test process that asks for it: the suite's two
    workers (pytest-xdist) share it, so a workspace is built once and the paths stored in it (a tiny
    model's folder) are the same for both."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, above each worker's own
    folder = root / f"shared-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def _save_tiny(folder, model):
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(backbones.minilm_dir() / name, folder / name)  # reuse MiniLM's tokenizer: real word pieces
    return str(folder)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide random BERT with MiniLM's tokenizer: an encoder backbone that loads in ms."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    return str(_built_once(tmp_path_factory, "tiny-bert", lambda folder: _save_tiny(folder, BertModel(config))))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A 4-layer, 32-wide random Llama causal LM (with MiniLM's tokenizer)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=0,
    )
    return str(_built_once(tmp_path_factory, "tiny-llama", lambda folder: _save_tiny(folder, LlamaForCausalLM(config))))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "workspace.duckdb")


@pytest.fixture(scope="session")
def mapped_workspace(tmp_path_factory, tiny_bert):
    """bbc-news (150 sentences) encoded by the tiny BERT, with a PCA and a UMAP map."""

    def build(folder):
        workspace = Store(folder / "workspace.duckdb")
        pipeline.ingest(workspace, "bbc-news", limit=150)
        encoding_id = pipeline.encode(workspace, "bbc-news", backbone_name=tiny_bert)
        pipeline.project(workspace, encoding_id, method="pca")
        pipeline.project(workspace, encoding_id, method="umap")

    return _built_once(tmp_path_factory, "mapped", build) / "workspace.duckdb"


@pytest.fixture(scope="session")
def trained_workspace(mapped_workspace, tmp_path_factory, tiny_llama):
    """The mapped workspace with a VQ model, an SAE (dashboards built) and a small text VAE trained on
    it, and a second dataset that a bundle or a static site can leave out."""
    import pandas as pd
    import specs

    from latentviz import features, fit
    from latentviz.cli import main

    def build(folder):
        db = folder / "workspace.duckdb"
        copy_workspace(mapped_workspace, db)
        workspace = Store(db)
        workspace.add_dataset(
            "other", "test", pd.DataFrame({"text": ["left out", "also left out"], "label": ["a", "b"]})
        )
        backbone = workspace.projections()["backbone"].iloc[0]
        argv = ["train", "vq", "--db", str(db), "--dataset", "bbc-news", "--backbone", backbone, "--steps", "20"]
        assert main([*argv, "--codebook-size", "8", "--batch-size", "32"]) == 0
        sae = specs.sae(
            "bbc-news",
            backbone=tiny_llama,
            layer=2,
            max_tokens=1500,  # from about 60 of its texts: an SAE wants ten or more
            model={"d_sae": 32, "k": 4},
            training={"steps": 20, "batch_size": 128, "lr": 1e-3},
        )
        features.build(workspace, fit.sae.train(workspace, sae))
        vae = specs.vae(
            "bbc-news", model={"variant": "rnn", "latent_dim": 4, "hidden": 32}, training={"batch_size": 16}, epochs=2
        )
        fit.vae.train(workspace, vae)

    return _built_once(tmp_path_factory, "trained", build) / "workspace.duckdb"


@pytest.fixture
def trained_copy(trained_workspace, tmp_path):
    """A writable copy of the trained workspace, its checkpoints beside it: a Store."""
    db = tmp_path / "workspace.duckdb"
    copy_workspace(trained_workspace, db)
    return Store(db)
