import numpy as np
import pandas as pd
import pytest
import specs

from latentviz import codebook, fit
from latentviz.store import Store, StoreError, copy_workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("vq") / "ws.duckdb")
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 50)
    store.add_dataset("d", "test", pd.DataFrame({"text": [f"sentence {i}" for i in range(150)], "label": labels}))
    ids = store.texts("d")["id"].to_numpy()
    vectors = rng.normal(size=(3, 16))[np.repeat(np.arange(3), 50)] + 0.05 * rng.normal(size=(150, 16))
    encoding_id = store.encoding_id("d", "fake", 1, 16)
    store.add_vectors(encoding_id, ids, vectors.astype(np.float32))
    store.mark_encoding_complete(encoding_id)
    model_id = fit.vq.train(
        store,
        specs.vq(
            "d",
            backbone="fake",
            training={"steps": 60, "batch_size": 32, "eval_every": 20},
            model={"quantizer": "rvq", "codebook_size": 8, "groups": 2, "stages": 2},
        ),
    )
    return store, model_id


def test_codebook_summary_adds_up(trained):
    store, model_id = trained
    book = codebook.codebook(store, model_id)
    assert book.size == 8 and book.stages == 2
    assert book.usage["count"].sum() == 150 * 2  # two code positions per text, stage 1
    assert book.usage["rank"].tolist() == list(range(1, 9)) and book.usage["count"].is_monotonic_decreasing
    assert (book.usage["dead"] == (book.usage["count"] == 0)).all()
    assert book.lorenz["uses"].iloc[-1] == pytest.approx(1.0) and 0 <= book.gini <= 1
    assert set(book.curves["metric"]) >= {"perplexity", "utilisation", "reconstruction", "dead (EMA rule)"}
    assert book.curves["step"].max() == 60
    assert book.by_label["count"].sum() == 300
    assert len(book.vectors) == 8 and set(book.vectors.columns) == {"code", "x", "y", "count"}
    second = codebook.codebook(store, model_id, stage=1)
    assert second.usage["count"].sum() == 300


def test_examples_and_map_colours(trained):
    store, model_id = trained
    book = codebook.codebook(store, model_id)
    top = int(book.usage["code"].iloc[0])
    examples = codebook.examples(store, model_id, top, k=5)
    assert 0 < len(examples) <= 5 and examples["text"].str.len().is_monotonic_increasing
    assert codebook.sentence_code_models(store, "d") == [model_id] and codebook.sentence_code_models(store, "x") == []
    colours = codebook.code_colours(store, model_id, top=2)
    assert len(colours) == 150 and colours.nunique() <= 3
    with pytest.raises(StoreError, match="no finished VQ model"):
        codebook.codebook(store, 999)


def test_a_token_level_model_quantises_each_tokens_activation(mapped_workspace, tiny_llama, tmp_path):

    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    store = Store(db)
    model_id = fit.vq.train(
        store,
        specs.vq(
            "bbc-news",
            backbone=tiny_llama,
            tokens=True,
            layer=2,
            max_tokens=2000,
            training={"steps": 40, "batch_size": 64, "eval_every": 20},
            model={"codebook_size": 16},
        ),
    )
    codes = store.codes(model_id)
    assert len(codes) == 2000 and codes["token"].notna().all() and (codes["slot"] >= 1).all()  # CLS left out
    assert model_id not in codebook.sentence_code_models(store, "bbc-news")  # no colour for the map
    book = codebook.codebook(store, model_id)
    assert book.usage["count"].sum() == 2000
    examples = codebook.examples(store, model_id, int(book.usage["code"].iloc[0]), k=3)
    assert list(examples.columns) == ["token", "id", "text", "label"]
    row = examples.iloc[0]
    assert row["token"].strip().lower() in row["text"].lower()


def test_residual_vq_headline_figures_are_the_first_stages_and_pooled_ones_say_so(trained):
    from latentviz import metrics

    store, model_id = trained
    figures = store.model(model_id)["metrics"]
    codes = store.codes(model_id)
    texts = np.sort(codes["id"].unique())
    _, held_rows = fit.common.held_out_split(texts, 42)
    held = codes[codes["id"].isin(texts[held_rows])]
    for stage in (0, 1):
        expected = metrics.codebook_usage(held[held["stage"] == stage]["code"].to_numpy(), 8)
        assert figures[f"stage{stage + 1}_perplexity"] == pytest.approx(expected["perplexity"])
    assert (
        figures["perplexity"] == figures["stage1_perplexity"] and figures["dead_codes"] == figures["stage1_dead_codes"]
    )
    pooled = metrics.codebook_usage(held["code"].to_numpy(), 8)
    assert figures["pooled_perplexity"] == pytest.approx(pooled["perplexity"])


def test_token_rows_are_held_out_by_whole_texts():
    text_ids = np.repeat(np.arange(50), np.arange(50) % 7 + 1)  # 50 texts of 1 to 7 tokens
    train_rows, held_rows = fit.common.held_out_split(text_ids, 42)
    assert len(train_rows) + len(held_rows) == len(text_ids)
    assert not set(text_ids[train_rows]) & set(text_ids[held_rows])  # no text on both sides
    assert len(set(text_ids[held_rows])) == 5  # 10% of the texts
