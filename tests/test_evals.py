"""latentviz eval and compare: the core evaluation against the splice it generalises, exact answers on
SAEs built by hand, and SAE ↔ SAE matching on a planted pair."""

import json

import numpy as np
import pytest
import torch

from latentviz import backbones, evals, fit, metrics, runs, settings
from latentviz.cli import main
from latentviz.evals import absorption, core, probing
from latentviz.evals.matching import classify
from latentviz.models import base
from latentviz.models.sae import SAEConfig, SparseAutoencoder
from latentviz.steps import Compare
from latentviz.store import Store

TEXTS = [
    "The markets rallied after the announcement.",
    "A new film opens this week in London.",
    "The minister spoke about taxes and growth.",
    "Rain is expected across the north tomorrow.",
    "The team won the cup final on penalties.",
    "Shares in the bank fell sharply.",
    "Voters go to the polls next month.",
    "The band released a second album.",
    "Researchers found a new species of frog.",
]


def identity_sae(d_in: int, layer: int, scale: float = 1.0) -> SparseAutoencoder:
    """A ReLU SAE with latents [x, −x] split into positive parts, decoding to scale · x exactly."""
    config = SAEConfig(d_in=d_in, d_sae=2 * d_in, architecture="standard", k=1, normalize_input=False, layer=layer)
    sae = SparseAutoencoder(config)
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(scale * torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


@pytest.fixture(scope="module")
def lm(tiny_llama):
    return backbones.causal_lm(tiny_llama, None)


def test_a_perfect_reconstruction_scores_one_everywhere_with_intervals_that_collapse(lm):
    model, tokenizer = lm
    figures = core.evaluate(
        model, tokenizer, TEXTS, identity_sae(32, 2), keep_sinks=True, prepend_bos=None, resamples=200
    )
    for name in ("ce_loss_score", "kl_div_score", "relative_reconstruction_bias"):
        assert figures[name] == pytest.approx(1.0, abs=1e-4)
        assert figures[f"{name}_interval"] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert figures["kl_div_with_sae"] == pytest.approx(0.0, abs=1e-6)
    assert figures["fvu"] == pytest.approx(0.0, abs=1e-9)
    assert figures["texts"] == len(TEXTS) and figures["spliced_tokens"] > 0


def test_the_core_figures_agree_with_the_training_splice_and_the_reference_definitions(lm):
    model, tokenizer = lm
    sae = identity_sae(32, 2, scale=0.8)  # shrinks every reconstruction by exactly 0.8
    figures = core.evaluate(model, tokenizer, TEXTS, sae, keep_sinks=True, prepend_bos=None, resamples=300)
    assert figures["relative_reconstruction_bias"] == pytest.approx(0.8, rel=1e-6)
    # the splice used when training ends (another implementation, batch by batch) gives the same losses
    reference = fit.sae.spliced_losses(model, tokenizer, TEXTS, sae, keep_sinks=True)
    assert figures["ce_clean"] == pytest.approx(reference["ce_clean"], rel=1e-5)
    assert figures["ce_sae"] == pytest.approx(reference["ce_sae"], rel=1e-5)
    assert figures["ce_zero_ablation"] == pytest.approx(reference["ce_zero_ablation"], rel=1e-5)
    expected = metrics.ce_loss_recovered(reference["ce_clean"], reference["ce_sae"], reference["ce_zero_ablation"])
    assert figures["ce_loss_score"] == pytest.approx(expected, abs=1e-3)  # a ratio of near differences
    assert 0 < figures["kl_div_with_sae"] < figures["kl_div_with_ablation"]
    assert figures["kl_div_score"] == pytest.approx(
        metrics.kl_div_score(figures["kl_div_with_sae"], figures["kl_div_with_ablation"])
    )
    for name in core.WITH_INTERVALS:
        low, high = figures[f"{name}_interval"]
        assert low <= figures[name] <= high and low < high


def test_fvu_and_shrinkage_of_the_evaluation_are_the_reference_formulas_on_the_spliced_tokens(lm, tiny_llama, tmp_path):
    model, tokenizer = lm
    sae = identity_sae(32, 2, scale=0.8)
    sae.W_dec.data[:32] += 0.1 * torch.randn(32, 32)  # not a pure rescaling: FVU and γ then differ from 0.04, 0.8
    t = core.spliced_statistics(model, tokenizer, TEXTS, sae, keep_sinks=True, prepend_bos=None)
    backbone = backbones.shared(tiny_llama, tmp_path)
    states = []
    for text in TEXTS:  # the texts' own tokens, one text at a time, read by another path
        tokens, hidden = backbones.hidden_states(backbone, text, 2)
        states.append(hidden[~np.isin(tokens, tokenizer.all_special_tokens)])
    x = torch.from_numpy(np.concatenate(states))
    with torch.no_grad():
        x_hat = sae.decode(sae.encode(x)).double().numpy()
    x = x.double().numpy()
    assert t["spliced"].sum() == len(x)
    variance = t["x_sq"].sum() - (t["x_sum"] ** 2).sum() / t["spliced"].sum()
    assert t["error_sq"].sum() / variance == pytest.approx(metrics.fraction_of_variance_unexplained(x, x_hat), rel=1e-5)
    assert t["x_hat_sq"].sum() / t["x_dot_x_hat"].sum() == pytest.approx(
        metrics.relative_reconstruction_bias(x, x_hat), rel=1e-5
    )


@pytest.fixture
def workspace(trained_copy):
    return trained_copy


def sae_id(store: Store) -> int:
    return int(store.models().query("kind == 'sae'")["id"].iloc[0])


def test_eval_stores_its_figures_and_cost_and_the_frontier_shows_them(workspace, capsys):
    model_id = sae_id(workspace)
    before = evals.frontier(workspace, model_id)
    assert before["measured"].tolist() == ["training"]
    argv = ["eval", str(model_id), "--db", str(workspace.path), "--evaluations", "core", "--texts", "12"]
    assert main([*argv, "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    assert "ce_loss_score" in printed and "relative_reconstruction_bias" in printed
    stored = workspace.evaluations(model_id).set_index("name").loc["core"]
    assert 0 < stored["figures"]["texts"] <= 12 and stored["tokens"] == stored["figures"]["predicted_tokens"] > 0
    assert stored["seconds"] > 0
    after = evals.frontier(workspace, model_id)
    assert after["measured"].tolist() == ["evaluation"]
    assert after["l0"].iloc[0] == pytest.approx(stored["figures"]["l0"])


def test_eval_runs_on_texts_the_sae_never_trained_on(workspace):
    from latentviz.fit.common import held_out_split

    row = workspace.model(sae_id(workspace))
    _, texts = core.held_out_texts(workspace, row, 1000)
    text_ids = workspace.capture_tokens(runs.facts(row)["capture"])["text_id"].to_numpy()
    train_rows, _ = held_out_split(text_ids, runs.from_record(row).training.seed)
    by_id = workspace.texts("bbc-news").set_index("id")["text"]
    trained_on = set(by_id.loc[np.unique(text_ids[train_rows])])
    assert texts and not trained_on & set(texts)
    with pytest.raises(Exception, match="no dataset named"):
        core.held_out_texts(workspace, row, 10, dataset="nothing")


def planted_copy(store: Store, model_id: int, seed: int = 0) -> tuple[int, np.ndarray]:
    """Another model row whose SAE is this one's latents permuted and rescaled (the same function of x):
    (its id, the permutation: feature j of the copy is feature order[j] of the original)."""
    row = store.model(model_id)
    sae = base.load(row["checkpoint"])
    rng = np.random.default_rng(seed)
    order = rng.permutation(sae.config.d_sae)
    # one scale for all latents: TopK picks the k largest, which a per-latent scale would change
    scale = torch.full((sae.config.d_sae,), 2.5)
    with torch.no_grad():
        sae.W_enc.copy_(sae.W_enc[:, order] * scale)
        sae.b_enc.copy_(sae.b_enc[order] * scale)
        sae.W_dec.copy_(sae.W_dec[order] / scale[:, None])
        sae.threshold.copy_(sae.threshold[order] * scale)
    copy_id = store.add_model("sae", "planted copy", row["dataset"], row["backbone"], row["config"])
    store.finish_model(copy_id, str(base.save(sae, settings.models_dir(store.path) / str(copy_id))), {})
    return copy_id, order


def test_a_permuted_rescaled_copy_matches_every_feature_and_compare_prints_json(workspace, capsys):
    model_id = sae_id(workspace)
    copy_id, order = planted_copy(workspace, model_id)
    argv = ["compare", str(model_id), str(copy_id), "--db", str(workspace.path), "--json"]
    assert main(argv) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["pw_mcc_decoder"] == pytest.approx(1.0)
    assert found["pw_mcc_activations"] == pytest.approx(1.0, abs=1e-4) and found["tokens"] > 0
    features = {f["feature"]: f for f in found["features"]}
    alive = [f for f in features.values() if f["density"] > 0]
    assert alive and all(f["correlation"] == pytest.approx(1.0, abs=1e-4) for f in alive)
    assert found["matched"] == len(order) and found["matched_share"] == 1.0
    assert all(order[features[i]["partner"]] == i for i in features)  # each feature found its own copy
    summary, stored = workspace.comparison(model_id, copy_id)
    assert summary["matched"] == len(order) and len(stored) == len(order)


def test_comparing_an_sae_with_itself_or_across_lms_is_refused_in_one_line(workspace):
    model_id = sae_id(workspace)
    with pytest.raises(Exception, match="two different SAEs"):
        evals.compare(workspace, Compare(a=model_id, b=model_id))


def test_features_are_classed_matched_split_absorbed_or_unmatched_on_planted_cosines():
    # rows: features of A; columns: features of B
    cosine = np.array(
        [
            [0.95, 0.10, 0.00, 0.00, 0.00],  # 0: matched to B0
            [0.00, 0.60, 0.65, 0.00, 0.00],  # 1: cut into B1 and B2 (neither reaches 0.7)
            [0.90, 0.00, 0.00, 0.10, 0.00],  # 2: B0 is A0's match; A2 gets B3 (0.1): absorbed into B0
            [0.00, 0.00, 0.00, 0.00, 0.20],  # 3: nothing near
        ]
    )
    found = classify(cosine, threshold=0.7)
    assert found["kind"].tolist() == ["matched", "split", "absorbed", "unmatched"]
    assert found["partner"].tolist() == [0, 2, 0, 4]
    assert found["cosine"].tolist() == [0.95, 0.65, 0.90, 0.20]


# -- sparse probing ---------------------------------------------------------------------------------------


def test_latents_are_chosen_by_normalised_mean_difference_not_by_scale():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    loud = 95 + 10 * (y - 0.5) + rng.normal(0, 2, 200)  # class means 90 and 100: a big difference, a small share
    clean = y * rng.uniform(0.9, 1.1, 200)  # fires on the class alone: a small difference, all of its range
    f = np.column_stack([loud, clean, np.zeros(200)])
    assert probing.select_latents(f, y, 1).tolist() == [1]
    raw = f[y == 1].mean(0) - f[y == 0].mean(0)
    assert np.argmax(np.abs(raw)) == 0  # the unnormalised difference (the formula this must not be) picks the loud one


def test_a_probe_on_a_planted_latent_is_perfect_and_the_split_is_balanced():
    rng = np.random.default_rng(1)
    y = (rng.random(600) < 0.3).astype(int)
    train, test = probing.balanced_split(y, 200, 100, seed=0)
    assert y[train].mean() == 0.5 and y[test].mean() == 0.5 and not set(train) & set(test)
    f = rng.exponential(1.0, (600, 50)) * (rng.random((600, 50)) < 0.2)
    f[:, 17] = y * rng.uniform(1, 2, 600)  # latent 17 fires exactly on the concept
    dense = rng.normal(size=(600, 8))
    found = probing.probe_task(dense[train], dense[test], f[train], f[test], y[train], y[test])
    assert found["k=1"]["latents"] == [17] and found["k=1"]["accuracy"] == 1.0 and found["k=1"]["auc"] == 1.0
    assert found["dense"]["auc"] < 0.7  # noise: the baseline cannot tell the classes apart


def test_sparse_probing_reads_sae_probes_datasets_and_the_corpus_labels(workspace, capsys):
    model_id = sae_id(workspace)
    prompts, labels = probing.read_task("92_glue_sst2")
    assert len(prompts) == len(labels) > 1000 and set(labels) == {0, 1}
    argv = ["eval", str(model_id), "--db", str(workspace.path), "--evaluations", "probing"]
    argv += ["--probe-datasets", "92_glue_sst2", "--probe-train", "40", "--probe-test", "40"]
    assert main(argv) == 0
    assert "92_glue_sst2" in capsys.readouterr().out
    figures = workspace.evaluations(model_id).set_index("name").loc["probing", "figures"]
    tasks = figures["tasks"]
    assert "92_glue_sst2" in tasks and any(name.startswith("bbc-news: ") for name in tasks)
    assert tasks["92_glue_sst2"]["texts"] == [40, 40]
    assert set(figures["mean"]) == {"dense", "k=1", "k=2", "k=5", "k=20"}
    for scores in tasks.values():
        assert all(0 <= scores[m]["accuracy"] <= 1 and 0 <= scores[m]["auc"] <= 1 for m in figures["mean"])
    for name in ("nothing", "../probing_datasets_MASTER", "/etc/passwd"):  # a file outside its folder too
        with pytest.raises(Exception, match="sae-probes has no dataset"):
            probing.read_task(name)


# -- absorption -----------------------------------------------------------------------------------------


def test_absorption_scores_on_a_planted_letter_latent_and_a_word_latent_that_absorbs_it():
    decoder = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],  # 0: the letter's main latent, along the probe
            [0.8, 0.6, 0.0, 0.0],  # 1: a word's latent that carries the letter's direction too (cosine 0.8)
            [0.0, 0.0, 1.0, 0.0],  # 2: unrelated
        ]
    )
    x = np.tile([2.0, 0.0, 0.0, 0.0], (4, 1))  # the probe reads 2 on every word
    f = np.array(
        [
            [2.0, 0.0, 0.0],  # the main latent carries it all: no absorption
            [0.0, 2.5, 0.0],  # the main latent is silent, the word's latent carries 2.5·0.8 = 2: full absorption
            [1.0, 1.25, 0.0],  # half and half: fraction 1 / (1 + 1), not full (the main latent fired)
            [0.0, 0.0, 3.0],  # nothing along the probe carries it: not absorption
        ]
    )
    fraction, full, top = absorption.absorption_scores(x, f, decoder, direction=[3.0, 0, 0, 0], main=[0])
    assert fraction.tolist() == [0.0, 1.0, 0.5, 0.0]
    assert full.tolist() == [False, True, False, False]
    assert top[1] == 1  # the word's latent absorbed the letter
    # in the SAE's own units (input_scale · x) the same latents carry a tenth of the probe's projection
    fraction, full, _ = absorption.absorption_scores(x, f, decoder, [1.0, 0, 0, 0], [0], input_scale=10.0)
    assert fraction.tolist() == [0.0, 0.0, 0.0, 0.0] and not full.any()


def test_absorption_runs_on_the_backbones_own_words_and_is_stored(workspace, capsys, monkeypatch):
    model_id = sae_id(workspace)
    argv = ["eval", str(model_id), "--db", str(workspace.path), "--evaluations", "absorption"]
    assert main([*argv, "--absorption-words", "600"]) == 2  # a random tiny LM's states do not tell letters apart
    assert "absorption not measured: the LM's activations here do not tell" in capsys.readouterr().err
    assert "not_measured" in workspace.evaluations(model_id).set_index("name").loc["absorption", "figures"]
    monkeypatch.setattr(absorption, "MIN_PROBE_F1", 0.0)  # keep every letter, to see the whole path run
    assert main([*argv, "--absorption-words", "600"]) == 0
    assert "First-letter absorption on" in capsys.readouterr().out
    figures = workspace.evaluations(model_id).set_index("name").loc["absorption", "figures"]
    assert figures["words"] == 600 and figures["test_words"] == 120 and figures["letters"]
    assert 0 <= figures["mean_absorption_fraction"] <= 1 and 0 <= figures["mean_full_absorption_rate"] <= 1
    for scores in figures["letters"].values():
        assert 1 <= len(scores["main_latents"]) <= absorption.MAX_K and scores["probe_true_positives"] >= 0


# -- scored labels --------------------------------------------------------------------------------------


def test_every_label_with_held_out_examples_is_scored_stored_and_opens_the_dashboards(workspace, tiny_bert):
    from latentviz import features
    from latentviz.evals import labels

    model_id = sae_id(workspace)
    summary, embedded = labels.evaluate(workspace, model_id, embedder=tiny_bert)
    stats = workspace.feature_summaries(model_id)
    scored = stats.dropna(subset=["label_score"])
    assert summary["scored"] == len(scored) > 0 and embedded > summary["scored"]
    assert scored["label_score"].between(0, 1).all() and (scored["label"] != "").all()
    assert summary["mean_score"] == pytest.approx(scored["label_score"].mean())
    # the held-out side: interval examples only (the label came from the top ones)
    examples = workspace.stored_examples(model_id)
    intervals = examples[examples["bucket"] >= 0].groupby("feature")["text_id"].nunique()
    assert (intervals.reindex(scored["feature"]).fillna(0) >= 2).all()
    ranked = features.best_labelled(features.statistics(workspace, model_id), len(stats))["label_score"]
    assert ranked.notna().any() and ranked.fillna(-1).is_monotonic_decreasing  # scored labels open first, best first
    features.build(workspace, model_id)  # rebuilt dashboards (new labels) drop the old scores
    assert workspace.feature_summaries(model_id)["label_score"].isna().all()


def test_saes_on_adjacent_layers_are_correlated_on_the_tokens_both_captures_share(workspace, tiny_llama):
    import specs

    first = sae_id(workspace)
    run = specs.sae(
        "bbc-news",
        backbone=tiny_llama,
        layer=3,  # the next block: its own capture of the same texts
        max_tokens=1500,
        model={"d_sae": 32, "k": 4},
        training={"steps": 20, "batch_size": 128, "lr": 1e-3},
    )
    second = fit.sae.train(workspace, run)
    captures = [runs.facts(workspace.model(i))["capture"] for i in (first, second)]
    assert captures[0] != captures[1]
    summary, matches = evals.compare(workspace, Compare(a=first, b=second, tokens=500))
    assert summary["tokens"] == 500 and summary["pw_mcc_activations"] is not None
    assert matches["correlation"].notna().all() and matches["density"].notna().all()


# -- LLM explanations, detection and fuzzing ------------------------------------------------------------


def test_firing_tokens_are_marked_as_delphi_marks_them_and_windows_put_the_example_late():
    from latentviz.evals import explanations

    assert explanations.firing_marks([0.0, 1.0, 0.2, 0.31, 0.0]) == [False, True, False, True, False]
    assert explanations.marked([" the", " cat", " sat", " on"], [False, True, True, False]) == "the<< cat sat>> on"
    assert explanations.marked(["a", "b"], [False, True]) == "a<<b>>"  # a run that reaches the end is closed
    context = [(str(i), 0.0) for i in range(100)]
    shown = explanations.window(context, 50)
    late = explanations.WINDOW - explanations.WINDOW // 4
    assert len(shown) == explanations.WINDOW and shown.index(("50", 0.0)) == late
    assert explanations.window(context, 3)[0] == ("0", 0.0)  # near the start: from the start
    rng = np.random.default_rng(0)
    assert sum(explanations.random_marks(10, 3, rng)) == 3 and sum(explanations.random_marks(2, 5, rng)) == 2


def test_an_explanation_is_its_first_sentence_without_the_restated_question():
    from latentviz.evals.explanations import clean_explanation

    said = "The marked words have in common that they are names of football players. They all play."
    assert clean_explanation(said) == "names of football players"
    assert clean_explanation("\n[EXPLANATION]: Cities in <<Europe>>.\nmore") == "Cities in Europe"
    assert clean_explanation("") == "" and clean_explanation("1. ") == ""  # an echo of the numbered examples


class _ReadsTheMarks:
    """A judge that answers 1 exactly when the text holds the word the label names (detection) or when
    every marked token is that word (fuzzing): a perfect scorer, for a known answer."""

    prompts = 0

    def yes_probability(self, system, label, texts):
        from latentviz.evals.explanations import FUZZING_SYSTEM

        if system == FUZZING_SYSTEM:
            import re

            marks = [re.findall(r"<<(.*?)>>", text) for text in texts]
            return np.array([float(bool(m) and all(part.strip() == label for part in m)) for m in marks])
        return np.array([float(label in text.split()) for text in texts])


def test_a_label_that_names_the_firing_word_scores_one_and_a_wrong_one_scores_chance(tiny_bert):
    from latentviz import backbones, settings
    from latentviz.evals import explanations

    encoder = backbones.shared(tiny_bert, settings.user_cache())
    activating = [([" we", " saw", " cats", " today"], [0.0, 0.0, 2.0, 0.0]) for _ in range(4)]
    silent = [[" rain", " fell", " all", " day"], [" the", " dog", " ran", " off"]] * 2
    rng = np.random.default_rng(0)
    right = explanations.score(_ReadsTheMarks(), encoder, "cats", activating, silent, rng)
    assert right["detection"] == right["detection_auroc"] == right["fuzzing"] == right["fuzzing_auroc"] == 1.0
    wrong = explanations.score(_ReadsTheMarks(), encoder, "umbrellas", activating, silent, rng)
    assert wrong["detection"] == wrong["fuzzing"] == 0.5 and wrong["detection_auroc"] == 0.5
    assert 0.0 <= right["embedding"] <= 1.0


def test_explanations_are_written_scored_and_stored_beside_the_labels_scores(
    workspace, tiny_llama, tiny_bert, monkeypatch
):
    from latentviz.evals import explanations

    monkeypatch.setattr(explanations, "WINDOW", 8)  # the tiny SAE fires often: short windows find silent places
    model_id = sae_id(workspace)
    summary, prompts = explanations.evaluate(workspace, model_id, tiny_llama, 3, embedder=tiny_bert)
    stored = workspace.explanations(model_id)
    assert summary["features"] == 3 and summary["explained"] == len(stored) <= 3
    # one explanation, then each label and explanation through both LLM scorers, one prompt per window
    windows = 2 * explanations.PER_SIDE
    assert prompts == 3 + 3 * 2 * windows + len(stored) * 2 * windows
    scores = workspace.label_scores(model_id)
    for scorer in explanations.SCORERS:
        assert len(scores[scores["scorer"] == scorer]) == 3
        assert summary[f"label_{scorer}"] == pytest.approx(scores[scores["scorer"] == scorer]["score"].mean())
    assert stored[["detection", "fuzzing", "embedding"]].stack().between(0, 1).all()
    assert (stored["explainer"] == tiny_llama).all()
    from latentviz import features

    features.build(workspace, model_id)  # rebuilt dashboards (new examples) drop the explanations and scores
    assert workspace.explanations(model_id).empty and workspace.label_scores(model_id).empty
