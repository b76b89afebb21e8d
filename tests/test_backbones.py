from pathlib import Path

import numpy as np
import pytest
import torch

from latentviz import backbones, pipeline
from latentviz.backbones import BackboneError

SENTENCES = [
    "The cat sat on the mat.",
    "Stocks fell sharply in early trading on Monday.",
    "A short one.",
    "The striker scored twice in the second half to win the cup final for his club.",
    "Hello",
]


def load(name, tmp_path=Path("/nonexistent")):
    return backbones.load(name, cache=tmp_path, device=torch.device("cpu"))


@pytest.mark.parametrize("fixture, causal, layers", [("tiny_bert", False, 2), ("tiny_llama", True, 4)])
def test_hooked_layer_equals_the_models_own_hidden_state(request, fixture, causal, layers):
    model = load(request.getfixturevalue(fixture))
    assert model.causal is causal and model.n_layers == layers
    assert model.default_layer == (layers // 2 if causal else layers)
    encoded = model.tokenizer(SENTENCES[1], return_tensors="pt")
    with torch.no_grad():
        reference = model.model(**encoded, output_hidden_states=True).hidden_states
    for layer in range(0, layers):  # the last entry may be final-normed (Llama): hooks take the block output
        _, states = backbones.hidden_states(model, SENTENCES[1], layer)
        assert np.allclose(states, reference[layer][0].numpy(), atol=1e-5), layer


def test_sublayer_sites_add_up_to_the_residual_stream(tiny_llama, tiny_bert):
    model = load(tiny_llama)
    _, before = backbones.hidden_states(model, SENTENCES[3], 1)
    after, attn, mlp = (
        backbones.hidden_states(model, SENTENCES[3], 2, site)[1] for site in ("resid_post", "attn_out", "mlp_out")
    )
    assert not np.allclose(attn, 0) and not np.allclose(mlp, 0)
    assert np.allclose(before + attn + mlp, after, atol=1e-5)  # a pre-norm block: h + attn(h) + mlp(h + attn(h))
    with pytest.raises(BackboneError, match="unknown site 'resid_mid'"):
        backbones.hidden_states(model, SENTENCES[0], 2, "resid_mid")
    with pytest.raises(BackboneError, match="layer 0 is the embeddings"):
        backbones.hidden_states(model, SENTENCES[0], 0, "mlp_out")
    assert backbones.hidden_states(load(tiny_bert), SENTENCES[0], 1, "mlp_out")[1].shape[1] == 32  # BERT's too


def test_blocks_after_the_layer_are_not_run(tiny_llama):
    model = load(tiny_llama)
    calls = []
    handles = [block.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, block in enumerate(model.blocks)]
    backbones.encode(model, SENTENCES[:2], layer=2)
    for handle in handles:
        handle.remove()
    assert sorted(set(calls)) == [0, 1]


def test_length_sorted_batches_give_the_same_vectors_in_input_order(tiny_bert):
    model = load(tiny_bert)
    together = backbones.encode(model, SENTENCES, batch_size=2)
    one_by_one = np.stack([backbones.encode(model, [s])[0] for s in SENTENCES])
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-6)


def test_mean_pooling_ignores_padding(tiny_llama):
    model = load(tiny_llama)
    short, long = "A short one.", "A considerably longer sentence that forces padding on the short one."
    assert np.allclose(backbones.encode(model, [short, long])[0], backbones.encode(model, [short])[0], atol=1e-5)


def test_token_batches_group_similar_lengths():
    batches = backbones.token_batches([3, 10, 1, 7, 5], batch_size=2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_bad_layer_and_bad_backbone_names(tiny_bert, tmp_path):
    model = load(tiny_bert)
    with pytest.raises(BackboneError, match="layers 0..2"):
        backbones.encode(model, SENTENCES, layer=3)
    with pytest.raises(BackboneError, match="cannot load backbone"):
        load(str(tmp_path / "no-such-model"))


def test_interrupted_encode_resumes_where_it_stopped(store, tiny_bert, monkeypatch):
    pipeline.ingest(store, "bbc-news", limit=60)
    monkeypatch.setattr(pipeline, "ENCODE_CHUNK", 16)

    def stop_after_two_chunks(done, total, message):  # Ctrl-C while the second chunk is being encoded
        if message == "encoding with " + tiny_bert and done >= 32:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.encode(store, "bbc-news", backbone_name=tiny_bert, progress=stop_after_two_chunks)
    partial = store.encodings()
    assert partial["vectors"].tolist() == [16] and not partial["complete"].iloc[0]  # chunk 2 was cut off uncommitted
    seen = []
    encoding_id = pipeline.encode(
        store, "bbc-news", backbone_name=tiny_bert, progress=lambda d, t, m: seen.append((d, t))
    )
    assert seen[0] == (0, None) and (16, 60) in seen  # resumed at 16, not 0
    ids, resumed = store.vectors(encoding_id)
    fresh = backbones.encode(load(tiny_bert), store.texts("bbc-news")["text"].tolist())
    assert len(ids) == 60 and np.allclose(resumed, fresh, atol=1e-5)
    assert store.encodings()["complete"].iloc[0]


@pytest.mark.integration
def test_packaged_minilm_matches_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    from latentviz.corpus import load_bbc_news

    texts = load_bbc_news(limit=100)[0]["text"].tolist() + SENTENCES
    ours = backbones.encode(load("minilm"), texts, batch_size=16)
    reference = SentenceTransformer(str(backbones.minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (len(texts), 384)
    assert (ours * reference).sum(1).min() >= 0.9999


@pytest.mark.integration
def test_packaged_smollm2_is_converted_once_and_keeps_its_hidden_states(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    dequantised, load_gguf = [], AutoModelForCausalLM.from_pretrained

    def keep(*args, **kwargs):  # the model transformers dequantises from the GGUF file: the reference
        dequantised.append(load_gguf(*args, **kwargs))
        return dequantised[-1]

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", keep)
    folder = backbones.smollm2_weights(tmp_path)
    monkeypatch.undo()
    (gguf,) = dequantised  # loaded once, from the packaged GGUF (the conversion saves it, then we reload)
    assert (folder / "config.json").exists() and not (tmp_path / "smollm2.partial").exists()
    model = backbones.load("smollm2", cache=tmp_path, device=torch.device("cpu"))
    assert model.causal and model.n_layers == 30 and model.dim == 576 and model.default_layer == 15
    tokens, ours = backbones.hidden_states(model, "The quick brown fox jumps over the lazy dog.", 8)
    ids = model.tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt")
    with torch.no_grad():
        reference = gguf(**ids, output_hidden_states=True).hidden_states[8][0].numpy()
    assert np.array_equal(ours, reference)
    assert backbones.smollm2_weights(tmp_path) == folder  # cached: no second conversion


def test_prepend_bos_puts_one_bos_first_or_none_whatever_the_tokenizer_adds():
    from transformers import AutoTokenizer

    adds = AutoTokenizer.from_pretrained(backbones.minilm_dir())
    adds.bos_token = "[CLS]"  # a tokenizer that puts its BOS first itself (as Llama 3's and Gemma's do)
    lacks = AutoTokenizer.from_pretrained(backbones.minilm_dir())
    lacks.bos_token = "[unused0]"  # one that has a BOS but does not add it (as GPT-2's)
    assert backbones.adds_bos(adds) and not backbones.adds_bos(lacks)
    text = ["the striker scored"]
    own = adds(text)["input_ids"][0]
    assert backbones.token_ids(adds, text) == backbones.token_ids(adds, text, True) == [own]
    assert backbones.token_ids(adds, text, False) == [own[1:]]
    bos = lacks.bos_token_id
    assert backbones.token_ids(lacks, text, True) == [[bos, *own]] and backbones.token_ids(lacks, text, False) == [own]


def test_a_capture_with_a_bos_first_reads_the_texts_tokens_one_position_on(store, tiny_llama):
    import pandas as pd

    from latentviz import activations, settings

    store.add_dataset("d", "test", pd.DataFrame({"text": SENTENCES[:3]}))
    model = backbones.shared(tiny_llama, settings.cache_dir(store.path))
    model.tokenizer.bos_token = "[unused0]"  # a BOS its tokenizer does not add
    try:
        plain = activations.capture(store, "d", tiny_llama, 2, mask_sinks=False)
        with_bos = activations.capture(store, "d", tiny_llama, 2, mask_sinks=False, prepend_bos=True)
    finally:
        model.tokenizer.bos_token = None
    first, second = (store.capture_tokens(c) for c in (plain, with_bos))
    assert plain != with_bos and first["token"].tolist() == second["token"].tolist()  # BOS is never kept
    assert (second["position"].to_numpy() == first["position"].to_numpy() + 1).all()
    assert not np.allclose(activations.load(store, plain)[1], activations.load(store, with_bos)[1])
