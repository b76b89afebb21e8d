"""Shared fixtures: tiny random backbones (fast), a small mapped workspace, fixed seeds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread: the tests' models are tiny, and on 2 cores a second thread costs more in sync than it
# gains (a 200-step tiny fit took 25.5 s with 2 threads, 1.3-3.8 s with one). Set before torch loads,
# so the servers and workers the tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import random
import shutil

import numpy as np
import pytest
import torch

from latentviz import backbones, pipeline
from latentviz.store import Store

torch.set_num_threads(1)  # where the caller had set OMP_NUM_THREADS otherwise


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


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
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), BertModel(config))


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
    return _save_tiny(tmp_path_factory.mktemp("tiny-llama"), LlamaForCausalLM(config))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "workspace.duckdb")


@pytest.fixture(scope="session")
def mapped_workspace(tmp_path_factory, tiny_bert):
    """bbc-news (150 sentences) encoded by the tiny BERT, with a PCA and a UMAP map."""
    path = tmp_path_factory.mktemp("mapped") / "workspace.duckdb"
    workspace = Store(path)
    pipeline.ingest(workspace, "bbc-news", limit=150)
    encoding_id = pipeline.encode(workspace, "bbc-news", backbone_name=tiny_bert)
    pipeline.project(workspace, encoding_id, method="pca")
    pipeline.project(workspace, encoding_id, method="umap")
    return path


@pytest.fixture(scope="session")
def trained_workspace(mapped_workspace, tmp_path_factory, tiny_llama):
    """The mapped workspace with a VQ model, an SAE (dashboards built) and a small text VAE trained on
    it, and a second dataset that a bundle or a static site can leave out."""
    import pandas as pd
    import specs

    from latentviz import features, fit
    from latentviz.cli import main

    db = tmp_path_factory.mktemp("trained") / "workspace.duckdb"
    shutil.copy(mapped_workspace, db)
    workspace = Store(db)
    workspace.add_dataset("other", "test", pd.DataFrame({"text": ["left out", "also left out"], "label": ["a", "b"]}))
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
    return db
