import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from latentviz import settings
from latentviz.cli import main
from latentviz.store import Store, copy_workspace


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_encode_project_info(tmp_path, tiny_bert, capsys):
    db = str(tmp_path / "ws.duckdb")
    source = tmp_path / "reviews.csv"
    source.write_text(
        "review,stars\n" + "".join(f"review number {i} was {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(30))
    )
    code, out, _ = run(capsys, "ingest", str(source), "--text-column", "review", "--label-column", "stars", "--db", db)
    assert code == 0 and "dataset 'reviews': 30 texts" in out
    code, out, _ = run(capsys, "encode", "--dataset", "reviews", "--backbone", tiny_bert, "--layer", "1", "--db", db)
    assert code == 0 and "encoding 1" in out
    code, out, _ = run(
        capsys, "project", "--dataset", "reviews", "--backbone", tiny_bert, "--method", "pca", "--db", db
    )
    assert code == 0 and "projection 1: pca" in out
    code, out, _ = run(capsys, "info", "--db", db)
    info = json.loads(out)
    assert info["datasets"][0] == {**info["datasets"][0], "name": "reviews", "texts": 30, "labels": 2}
    assert info["encodings"][0]["layer"] == 1 and info["encodings"][0]["vectors"] == 30
    assert info["projections"][0]["method"] == "pca" and info["projections"][0]["points"] == 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ingest", "missing.csv"], "no such file"),
        (["encode", "--dataset", "nope"], "no dataset named 'nope'"),
        (["project", "--dataset", "nope"], "no finished minilm encoding"),
        (["ingest", "bbc-news", "--limit", "0"], "limit must be a positive"),
        (["ingest", "bbc-news", "--text-column", "x"], "fixed columns"),
        (["serve", "--address", "0.0.0.0"], "add --read-only (a demo) or --allow-writes"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(tmp_path, capsys, argv, message):
    db = str(tmp_path / "ws.duckdb")
    code, out, err = run(capsys, *argv, "--db", db)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1 and message in lines[0]
    assert Store(db).datasets().empty


def test_info_on_a_missing_workspace_fails_cleanly(tmp_path, capsys):
    code, _, err = run(capsys, "info", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2 and "does not exist" in err


def test_python_dash_m_and_env_var(tmp_path):
    db = tmp_path / "env.duckdb"
    Store(db)
    result = subprocess.run(
        [sys.executable, "-m", "latentviz", "info"],
        capture_output=True,
        text=True,
        env={"LATENTVIZ_DB": str(db), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["workspace"] == str(db)


def test_train_vq_stores_model_curves_codes_and_metrics(tmp_path, capsys):
    from latentviz.store import Store

    db = tmp_path / "vq.duckdb"
    store = Store(db)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 24))
    labels = np.repeat(["a", "b", "c", "d"], 40)
    store.add_dataset(
        "planted", "test", __import__("pandas").DataFrame({"text": [f"text {i}" for i in range(160)], "label": labels})
    )
    ids = store.texts("planted")["id"].to_numpy()
    vectors = centres[np.repeat(np.arange(4), 40)] + 0.05 * rng.normal(size=(160, 24))
    encoding_id = store.encoding_id("planted", "fake", 1, 24)
    store.add_vectors(encoding_id, ids, vectors.astype(np.float32))
    store.mark_encoding_complete(encoding_id)
    code, out, err = run(
        capsys,
        "train",
        "vq",
        "--dataset",
        "planted",
        "--backbone",
        "fake",
        "--quantizer",
        "vq-ema",
        "--codebook-size",
        "8",
        "--codes",
        "1",
        "--kmeans-init",
        "--restart-dead",
        "--steps",
        "150",
        "--batch-size",
        "64",
        "--db",
        str(db),
    )
    assert code == 0, err
    assert "stage" not in err and "training vq-ema" in err  # the training bar is named after its stage
    table = dict(line.split(None, 1) for line in out.splitlines()[1:])  # "  name  value" rows
    assert table["codebook_size"].strip() == "8" and table["held_out"].strip() == "16"
    assert table["purity"].strip() == "1"  # four planted groups, each its own code
    assert "histogram" not in out  # lists stay in `info`
    model = store.models().iloc[0]
    assert model["kind"] == "vq" and json.loads(model["metrics"])["purity"] == 1.0
    curves = store.training_metrics(int(model["id"]))
    assert {"reconstruction", "perplexity", "loss"} <= set(curves["name"]) and curves["step"].max() == 150
    codes = store.codes(int(model["id"]))
    assert len(codes) == 160 and codes.groupby("code")["label"].nunique().max() == 1  # every code is pure
    from latentviz.models import base

    assert base.load(model["checkpoint"]).config.codebook_size == 8
    info = json.loads(run(capsys, "info", "--db", str(db))[1])
    assert info["models"][0]["metrics"]["purity"] == 1.0


def test_train_vq_bad_levels_get_one_line(tmp_path, capsys, mapped_workspace):

    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    code, _, err = run(
        capsys, "train", "vq", "--dataset", "bbc-news", "--quantizer", "fsq", "--levels", "8,x", "--db", str(db)
    )
    assert code == 2 and "--levels takes integers" in err and len(err.strip().splitlines()) == 1


def test_train_vae_then_decode_interpolate_traverse(tmp_path, capsys):
    import pandas as pd

    from latentviz.store import Store

    db = str(tmp_path / "vae.duckdb")
    sentences = [
        "the striker scored twice in the final .",
        "shares fell sharply on wall street today .",
        "the minister promised new taxes on fuel .",
        "the band released a new album this week .",
    ]
    labels = ["sport", "business", "politics", "music"]
    Store(db).add_dataset(
        "four",
        "test",
        pd.DataFrame({"text": [f"{s} {'!' * (i // 4)}" for i, s in enumerate(sentences * 20)], "label": labels * 20}),
    )
    code, out, err = run(
        capsys,
        "train",
        "vae",
        "--dataset",
        "four",
        "--variant",
        "rnn",
        "--latent-dim",
        "4",
        "--hidden",
        "64",
        "--epochs",
        "50",
        "--batch-size",
        "16",
        "--lr",
        "0.003",
        "--free-bits",
        "1.0",  # β now reaches 1 halfway through (before, a 2,000-step ramp kept it under 0.1 here)
        "--json",
        "--db",
        db,
    )
    assert code == 0, err
    figures = json.loads(out)
    assert {"iw_nll", "perplexity", "kl", "active_units", "mutual_information", "collapsed"} <= set(figures)
    assert figures["active_units"] >= 1 and not figures["collapsed"]
    # 200 steps (50 epochs of the 64 training texts, 16 a batch), β reaching 1 at step 100: the step-100
    # evaluation trained below β, so only step 200 competes
    assert figures["kept_step"] == 200 and figures["perplexity_unit"] == "word"
    model_id = figures["model"]
    code, out, _ = run(capsys, "decode", str(model_id), "--text", sentences[0], "--db", db)
    assert code == 0 and out.strip().startswith("the striker scored twice")
    code, out, _ = run(
        capsys, "interpolate", str(model_id), "--from", sentences[0], "--to", sentences[1], "--steps", "5", "--db", db
    )
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 6 and lines[-1].startswith("smoothness")
    code, out, _ = run(
        capsys, "traverse", str(model_id), "--text", sentences[2], "--dim", "0", "--steps", "3", "--db", db
    )
    assert code == 0 and len(out.strip().splitlines()) == 3 and out.startswith("-3.0σ")
    code, out, _ = run(
        capsys, "traverse", str(model_id), "--text", sentences[2], "--pca", "0", "--steps", "3", "--db", db
    )
    assert code == 0 and len(out.strip().splitlines()) == 3
    code, out, _ = run(
        capsys, "traverse", str(model_id), "--text", sentences[2], "--labels", "sport", "music", "--db", db
    )
    assert code == 0 and len(out.strip().splitlines()) == 7
    code, out, _ = run(
        capsys, "decode", str(model_id), "--text", sentences[1], "--decoding", "beam", "--neighbours", "3", "--db", db
    )
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("shares fell sharply") and len(lines) == 5 and "business" in lines[2]
    code, out, _ = run(capsys, "sample", str(model_id), "-n", "4", "--decoding", "sample", "--db", db)
    assert code == 0 and len(out.strip().splitlines()) == 4
    # Adding "sport minus business" to a business sentence moves it to the sport sentence.
    code, out, _ = run(
        capsys,
        "arithmetic",
        str(model_id),
        "--text",
        sentences[1],
        "--plus",
        "sport",
        "--minus",
        "business",
        "--alpha",
        "0,1",
        "--db",
        db,
    )
    before, after = out.splitlines()
    assert (
        code == 0
        and before.startswith("α=0\tshares fell sharply")
        and after.startswith("α=1\tthe striker scored twice")
    )
    code, _, err = run(
        capsys, "arithmetic", str(model_id), "--text", "x", "--plus", "cooking", "--minus", "sport", "--db", db
    )
    assert code == 2 and "no text of dataset 'four' has label 'cooking'" in err
    code, _, err = run(capsys, "decode", "999", "--text", "hello", "--db", db)
    assert code == 2 and "no trained VAE with id 999" in err
    info = json.loads(run(capsys, "info", "--db", db)[1])
    assert [m["kind"] for m in info["models"]] == ["vae"] and info["encodings"][0]["backbone"] == f"vae#{model_id}"


def test_capture_train_export_and_import_an_sae(tmp_path, capsys, tiny_llama):
    import pandas as pd
    from safetensors.torch import load_file

    from latentviz.store import Store

    db = str(tmp_path / "sae.duckdb")
    texts = [
        f"the {w} number {i} rose sharply today while markets fell"
        for i, w in enumerate(["price", "stock", "index", "rate"] * 15)
    ]
    Store(db).add_dataset("news", "test", pd.DataFrame({"text": texts}))
    code, out, err = run(
        capsys,
        "capture",
        "--dataset",
        "news",
        "--backbone",
        tiny_llama,
        "--layer",
        "2",
        "--max-tokens",
        "400",
        "--db",
        db,
    )
    assert code == 0, err
    assert "capture 1: 400 tokens" in out
    code, out, err = run(
        capsys,
        "train",
        "sae",
        "--dataset",
        "news",
        "--backbone",
        tiny_llama,
        "--layer",
        "2",
        "--arch",
        "topk",
        "--width",
        "64",
        "--k",
        "4",
        "--steps",
        "60",
        "--batch-size",
        "128",
        "--lr",
        "1e-3",
        "--max-tokens",
        "400",
        "--json",
        "--db",
        db,
    )
    assert code == 0, err
    assert (
        "training topk SAE: 100%" in err and "held-out figures and the spliced-in next-token loss:" in err
    )  # a bar per stage
    figures = json.loads(out)
    assert figures["l0"] <= 4 and 0 < figures["fvu"] < 1.5 and figures["dead_window_tokens"] > 0
    assert {"ce_clean", "ce_sae", "ce_zero_ablation", "ce_loss_recovered", "delta_lm_loss"} <= set(figures)
    assert figures["delta_lm_loss"] == pytest.approx(figures["ce_sae"] - figures["ce_clean"])
    code, out, err = run(capsys, "features", str(figures["model"]), "--db", db)
    assert code == 0 and "features fired over 400 tokens; every dashboard built in" in out, err
    from latentviz import features, runs

    store = Store(db)
    stats = features.statistics(store, figures["model"])
    activations = store._activations_frame(
        figures["model"], "SELECT text_id, position, feature, value FROM $activations"
    )
    assert len(stats) == 64 and stats["fires"].sum() == len(activations)
    fired = stats[stats["fires"] > 0]
    assert (fired["histogram"].map(sum) == fired["fires"]).all()  # every activation in one bin
    densest = int(stats.sort_values("fires").iloc[-1]["feature"])
    capture_id = runs.facts(store.model(figures["model"]))["capture"]
    opened = features.dashboard(store, figures["model"], capture_id, densest)
    shown = opened.examples
    top = shown[shown["bucket"] == -1]
    assert len(top) == 10 and top["value"].is_monotonic_decreasing
    assert shown["text_id"].is_unique and (shown["bucket"] >= 0).any()  # one per text, top and intervals alike
    assert all(
        any(v == pytest.approx(value) for _, v in context)
        for value, context in zip(top["value"], top["context"], strict=True)
    )
    # each example is its text's strongest token for the feature
    mine = activations[activations["feature"] == densest].groupby("text_id")["value"].max()
    assert np.allclose(top["value"].to_numpy(), mine.loc[top["text_id"]].to_numpy())
    linked = opened.links
    assert len(linked["neighbours"]) == 10 and linked["neighbours"]["cosine"].is_monotonic_decreasing
    assert densest not in set(linked["neighbours"]["feature"])
    assert linked["promotes"]["logit"].min() >= linked["suppresses"]["logit"].max()
    # co-occurrence counts equal a direct count over the stored activations
    together = activations[activations["feature"] == densest][["text_id", "position"]].merge(activations)
    expected = together[together["feature"] != densest]["feature"].value_counts()
    assert all(
        expected[f] == n for f, n in zip(linked["cooccurs"]["feature"], linked["cooccurs"]["tokens"], strict=True)
    )
    assert linked["cooccurs"]["tokens"].iloc[0] == expected.max()
    tokens, on_text = features.text_activations(store, figures["model"], "the price rose")
    assert len(tokens) == len(on_text) and (on_text > 0).any() and (on_text >= 0).all()
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and not on_text[[0, -1]].any()  # special: never read
    # the same two views as JSON, for scripts: the dashboard as stored, the text's activations as computed
    code, out, err = run(capsys, "feature", str(figures["model"]), str(densest), "--json", "--db", db)
    record = json.loads(out)
    assert (
        code == 0
        and record["feature"] == densest
        and record["fires"] == stats.set_index("feature").at[densest, "fires"]
    )
    assert [e["value"] for e in record["examples"]] == pytest.approx(shown["value"].tolist())
    assert [token for token, _ in record["links"]["promotes"]] == linked["promotes"]["token"].tolist()
    code, out, err = run(capsys, "text-features", str(figures["model"]), "the price rose", "--json", "--db", db)
    record = json.loads(out)
    assert code == 0 and [t["token"] for t in record["tokens"]] == tokens
    for token, values in zip(record["tokens"], on_text, strict=True):
        assert [f["feature"] for f in token["features"]] == [
            int(f) for f in values.argsort()[::-1][:3] if values[f] > 0
        ]
        assert [f["activation"] for f in token["features"]] == pytest.approx(
            sorted(values[values > 0])[::-1][:3], abs=1e-4
        )
    assert {f["feature"] for f in record["fired"]} == set(np.flatnonzero(on_text.max(0) > 0))
    code, out, err = run(capsys, "feature", str(figures["model"]), str(densest), "--db", db)
    assert code == 0 and out.startswith(f"feature {densest}: ") and "promotes: " in out
    code, out, err = run(capsys, "text-features", str(figures["model"]), "the price rose", "--db", db)
    assert code == 0 and len(out.strip().splitlines()) == len(tokens)
    code, out, err = run(capsys, "feature", str(figures["model"]), "999", "--db", db)
    assert code == 2 and "there is no feature 999" in err
    code, out, err = run(capsys, "export-sae", str(figures["model"]), "--out", str(tmp_path / "exported"), "--db", db)
    assert code == 0, err
    # written truly: its LM ran as the tokenizer does, and this one adds no BOS (MiniLM's adds [CLS])
    assert json.loads((tmp_path / "exported" / "cfg.json").read_text())["metadata"]["prepend_bos"] is False
    code, out, err = run(capsys, "import-sae", str(tmp_path / "exported"), "--dataset", "news", "--db", db)
    assert code == 0 and out.startswith("SAE 2: topk, d_in 32, d_sae 64"), err
    assert runs.from_record(store.model(2)).prepend_bos is False  # read back: its LM runs with no BOS first
    code, _, err = run(capsys, "export-sae", "2", "--out", str(tmp_path / "again"), "--db", db)
    first, second = (load_file(tmp_path / name / "sae_weights.safetensors") for name in ("exported", "again"))
    assert code == 0 and all(
        torch.equal(first[name], second[name]) for name in first
    )  # identical weights after the round trip
    code, _, err = run(capsys, "import-sae", str(tmp_path / "nowhere"), "--db", db)
    assert code == 2 and "no cfg.json" in err and len(err.strip().splitlines()) == 1
    info = json.loads(run(capsys, "info", "--db", db)[1])
    assert [m["kind"] for m in info["models"]] == ["sae", "sae"]


def test_serve_warms_up_the_pages_imports_and_the_map_s_first_view(mapped_workspace):
    """`latentviz serve` reads and publishes the newest map as its page first shows it (coloured by
    label), so the first visitor only reads them, and once no page is running, loads the map's vectors
    for its first click and imports the other pages' torch modules: checked in a fresh interpreter,
    where a page runs while the warm-up starts (no torch meanwhile), and after the warm-up the store's
    reads and the publisher all fail."""
    code = (
        "import sys, threading, time; from latentviz import map_widget, server, webapp\n"
        "from latentviz.store import Store\n"
        "with webapp.page_run():\n"
        "    warm_up = threading.Thread(target=server._warm_up); warm_up.start(); time.sleep(server.QUIET_S + 2)\n"
        "    while_a_page_ran = 'torch' in sys.modules\n"
        "warm_up.join()\n"
        "def fail(*args, **kwargs): raise AssertionError('not prepared')\n"
        "Store.projection_points = Store.vectors = map_widget.publish = fail\n"
        "workspace = webapp.store(); maps = workspace.projections(); newest = maps.loc[maps['id'].idxmax()]\n"
        "points = webapp.map_points(workspace, int(newest['id']))\n"
        "published = map_widget.published(webapp.published_map(workspace, int(newest['id']), points, 'label'))\n"
        "index = webapp.neighbour_index(workspace, int(newest['encoding_id']))\n"
        "print(while_a_page_ran, 'torch' in sys.modules, len(points), len(published['x']), len(published['traces']),"
        " len(index.ids))"
    )
    env = {**os.environ, settings.DB_ENV: str(mapped_workspace), "LATENTVIZ_READ_ONLY": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.stdout.split() == ["False", "True", "150", "150", "5", "150"], done.stderr[-2000:]
