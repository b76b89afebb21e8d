"""The app in Streamlit's AppTest: each page renders, its widgets drive the package, nothing raises."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import specs
from streamlit.testing.v1 import AppTest

from latentviz import charts, evals, features, fit, jobs, map_widget, numbers, pipeline, steps
from latentviz.store import Store, copy_workspace

TIMEOUT = 120
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def app(monkeypatch):
    def start(db, read_only=False, bootstrap=False):
        monkeypatch.setenv("LATENTVIZ_DB", str(db))
        monkeypatch.setenv("LATENTVIZ_READ_ONLY", "1" if read_only else "0")
        monkeypatch.setenv("LATENTVIZ_BOOTSTRAP", "1" if bootstrap else "0")
        return AppTest.from_file(APP, default_timeout=TIMEOUT).run()

    return start


def shown(at) -> str:
    """All the messages and captions the page shows."""
    return " ".join(str(e.value) for kind in (at.info, at.warning, at.error, at.success, at.caption) for e in kind)


def map_args(at) -> dict:
    """What the page sent the map's browser side (map_widget.draw)."""
    (element,) = [e for e in at.get("component_instance") if e.proto.component_name.endswith("latent_map")]
    return json.loads(element.proto.json_args)


def points_published(at) -> dict:
    """The map's points as its browser side fetches them (map_widget.publish)."""
    return map_widget.published(map_args(at)["points"])


def drawn(at) -> dict[str, int]:
    """The map as the browser gets it: points per trace (colour), by trace name."""
    counts = {}
    published = points_published(at)
    for trace in published["traces"]:
        counts[trace["name"]] = trace["count"]
    assert sum(counts.values()) == len(published["id"]) == len(published["x"])
    return counts


def test_empty_workspace_shows_what_to_do_and_builds_the_default_map(app, tmp_path, tiny_bert, monkeypatch):
    def small_default_map(workspace, progress):  # the real default takes minutes; same steps, tiny backbone
        pipeline.ingest(workspace, "bbc-news", limit=40, progress=progress)
        encoding_id = pipeline.encode(workspace, "bbc-news", backbone_name=tiny_bert, progress=progress)
        return pipeline.project(workspace, encoding_id, method="pca", progress=progress)

    monkeypatch.setattr(pipeline, "build_default_map", small_default_map)
    at = app(tmp_path / "empty.duckdb")
    assert not at.exception
    assert "No data yet" in shown(at)
    at.button(key="build_default").click().run()
    store = Store(tmp_path / "empty.duckdb")
    job_id = int(store.jobs()["id"].iloc[0])
    job = jobs.wait(store, job_id)
    assert job["status"] == "done", job
    at.run()
    assert not at.exception
    assert at.selectbox(key="map").value == int(store.projections()["id"].iloc[0])
    assert sum(drawn(at).values()) == 40  # every ingested text is on the map


def test_bootstrap_starts_the_default_job_once(app, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("latentviz.webapp.start_default_map", lambda workspace: started.append(workspace.path))
    app(tmp_path / "boot.duckdb", bootstrap=True)
    app(tmp_path / "boot.duckdb", bootstrap=True)
    assert started == [tmp_path / "boot.duckdb"]


def test_map_page_search_colour_neighbours_and_place(app, mapped_workspace, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    at = app(db)
    assert not at.exception and sum(drawn(at).values()) == 150
    assert at.query_params["map"] == str(at.selectbox(key="map").value)
    assert at.selectbox(key="color").value == "label"  # labelled texts: the map opens in their colours

    at.text_input(key="q").input("said").run()
    assert not at.exception and "texts contain “said”" in shown(at)

    matches = next(frame.value for frame in at.dataframe if "similarity" not in frame.value)
    assert len(matches) and matches["text"].str.contains("said", case=False).all()  # listed under the map

    at.selectbox(key="color").select("k-means cluster").run()
    assert not at.exception and at.query_params["color"] == "k-means cluster"
    at.slider(key="k").set_value(4).run()  # k sits beside the colouring and travels in the link
    assert not at.exception and at.query_params["k"] == "4"
    names = {trace["name"] for trace in points_published(at)["traces"]}  # a new colouring: published
    assert all(re.fullmatch(r"\d+ · \w+(, \w+)*", name) for name in names - {"search matches"}), names

    store = Store(db)
    text_id = int(store.projection_points(at.selectbox(key="map").value)["id"].iloc[3])
    at.session_state["focus"] = text_id
    at.run()
    assert not at.exception
    assert at.text[0].value.startswith("★ ")
    overlays = {trace["name"]: trace for trace in json.loads(map_args(at)["overlays"])}
    assert overlays["chosen text"]["customdata"] == [text_id] and len(overlays["neighbours"]["customdata"]) == 10
    neighbours = next(f.value for f in at.dataframe if "similarity" in f.value)  # plain frames have no key in AppTest
    assert len(neighbours) == 10 and neighbours["similarity"].is_monotonic_decreasing

    at.text_area(key="typed").input("A brand new sentence about the economy.\nAnother about the cup final.").run()
    at.button(key="place").click().run()
    assert not at.exception
    placed = at.session_state["placed"][at.selectbox(key="map").value]
    assert placed.points["text"].tolist() == ["A brand new sentence about the economy.", "Another about the cup final."]


def test_colours_turned_off_in_the_legend_leave_the_search_and_the_map_names_its_areas(app, mapped_workspace, tmp_path):
    db = tmp_path / "legend.duckdb"
    copy_workspace(mapped_workspace, db)
    at = app(db)
    published = points_published(at)  # the areas' names and the density layer travel with the points
    assert published["labels"] and {"x", "y", "text", "level", "size"} <= set(published["labels"][0])
    assert published["density"]["type"] == "contour"

    at.text_input(key="q").input("said").run()
    matches = next(frame.value for frame in at.dataframe if "similarity" not in frame.value)
    off = matches["label"].value_counts().index[0]  # the colour with the most matches
    at.session_state["map_chart"] = {"hidden": [off], "hidden_in": map_args(at)["points"]}  # a legend click
    at.run()
    assert not at.exception
    left = next(frame.value for frame in at.dataframe if "similarity" not in frame.value)
    assert off not in set(left["label"]) and len(left) == (matches["label"] != off).sum()
    marked = {trace["name"]: trace for trace in json.loads(map_args(at)["overlays"])}["search matches"]
    assert sorted(marked["customdata"]) == sorted(left["id"])
    assert "1 colour turned off in the legend" in shown(at)

    at.selectbox(key="color").select("none").run()  # another colouring: what was hidden no longer applies
    again = next(frame.value for frame in at.dataframe if "similarity" not in frame.value)
    assert len(again) == len(matches) and "turned off" not in shown(at)


def test_visitors_share_one_map_payload(app, mapped_workspace, tmp_path, monkeypatch):
    db = tmp_path / "shared.duckdb"
    copy_workspace(mapped_workspace, db)
    built = []
    build = charts.map_colouring
    monkeypatch.setattr(charts, "map_colouring", lambda *args, **kwargs: built.append(args) or build(*args, **kwargs))
    first, second = app(db), app(db)  # two sessions, each a browser without the points
    assert not first.exception and not second.exception
    assert map_args(first)["points"] == map_args(second)["points"] and sum(drawn(second).values()) == 150
    assert len(built) == 1  # built and published once, fetched by both
    # no text travels with the points; each hover text is in the file of its thousand, as plain text
    published = points_published(first)
    assert set(published) == {"texts", "texts_per_file", "labels", "density", "traces", "x", "y", "id"}
    store = Store(db)
    row = store.projection_points(first.selectbox(key="map").value).iloc[7]
    at = int(np.flatnonzero(published["id"] == row["id"])[0])  # its position travels as float32, beside its id
    assert (published["x"][at], published["y"][at]) == (np.float32(row["x"]), np.float32(row["y"]))
    folder = (map_widget.FOLDER / map_args(first)["points"]).parent / published["texts"]
    chunk = json.loads((folder / f"{int(row['id']) // map_widget.TEXTS_PER_FILE}.json").read_text())
    assert chunk[str(int(row["id"]))] == charts.shortened(row["text"])
    # another server cleared this one's files (they looked stale): the next run publishes them again
    shutil.rmtree((map_widget.FOLDER / map_args(first)["points"]).parent)
    first.run()
    assert not first.exception and sum(drawn(first).values()) == 150


def test_the_map_page_draws_without_loading_torch(trained_workspace):
    """The page a visitor lands on (the Latent Map; every model family trained, so it offers each VQ
    model's codes as colours) imports no torch, which would add about 1.5 s to a new server's first
    visit: run in a fresh interpreter, as a server's first page run is."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT}).run()\n"
        "maps = [e for e in at.get('component_instance') if e.proto.component_name.endswith('latent_map')]\n"
        "print(len(at.exception), len(maps), 'torch' in sys.modules)"
    )
    env = {**os.environ, "LATENTVIZ_DB": str(trained_workspace), "LATENTVIZ_READ_ONLY": "1", "LATENTVIZ_BOOTSTRAP": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.stdout.split()[-3:] == ["0", "1", "False"], done.stdout[-1000:] + done.stderr[-2000:]


def test_hover_texts_are_filed_by_thousand_whatever_their_order():
    texts = pd.DataFrame({"id": [2100, 5, 999, 1000, 3], "text": ["b" * 400, "a", "d", "e", "c"]})
    texts = texts.assign(x=0.0, y=0.0)
    points = map_widget.publish("order-test", texts, None, "order-test", labels=[], density_json="null")
    folder = (map_widget.FOLDER / points).parent / map_widget.published(points)["texts"]
    files = {path.name: json.loads(path.read_text()) for path in folder.iterdir()}
    assert files == {
        "0.json": {"5": "a", "999": "d", "3": "c"},
        "1.json": {"1000": "e"},
        "2.json": {"2100": charts.shortened("b" * 400)},
    }


def test_empty_place_request_gets_a_clear_error(app, mapped_workspace, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    at = app(db)
    at.button(key="place").click().run()
    assert not at.exception and "no text to place" in shown(at)


def test_data_page_adds_bbc_news_and_encodes(app, tmp_path, tiny_bert):
    at = app(tmp_path / "data.duckdb")
    at.switch_page("views/data.py").run()
    assert not at.exception and "No datasets yet" in shown(at)
    at.number_input(key="bbc_limit").set_value(100)
    at.text_input(key="bbc_name").input("news")
    at.button(key="add_bbc").click().run()
    store = Store(tmp_path / "data.duckdb")
    assert store.datasets()["texts"].tolist() == [100]
    assert at.selectbox(key="method").value == steps.PROJECT.method  # the spec's defaults
    assert at.selectbox(key="backbone").value == steps.ENCODE.backbone
    at.selectbox(key="backbone").select("other (Hugging Face id or folder)").run()
    at.text_input(key="custom_backbone").input(tiny_bert).run()
    at.selectbox(key="method").select("pca")
    at.button(key="encode").click().run()
    job_id = int(store.jobs()["id"].iloc[0])
    job = jobs.wait(store, job_id)
    assert job["status"] == "done", job
    assert store.projections()["method"].tolist() == ["pca"]
    at.run()
    assert not at.exception and [len(table.value) for table in at.dataframe] == [1, 1]  # datasets, encodings
    at.number_input(key="bbc_limit").set_value(100)
    at.text_input(key="bbc_name").input("news-2")
    at.button(key="add_bbc").click().run()
    assert not at.exception and at.selectbox(key="encode_dataset").value == "news-2"  # the form follows it
    assert "Datasets" in shown(at)  # the table has a heading
    assert at.button(key="delete").disabled  # one click deletes nothing: first say you mean it
    at.selectbox(key="delete_dataset").select("news")
    at.checkbox(key="delete_sure").check().run()
    at.button(key="delete").click().run()
    assert not at.exception and store.datasets()["name"].tolist() == ["news-2"]


def test_a_writable_app_answers_only_at_loopback_or_an_allowed_name(app, tmp_path, monkeypatch):
    import pandas as pd

    from latentviz import webapp

    assert all(map(webapp.allowed_host, ("127.0.0.1:8501", "localhost:8501", "[::1]:8501", "LOCALHOST", "")))
    assert not any(map(webapp.allowed_host, ("attacker.test:8501", "127.0.0.1.attacker.test", "[::2]:8501")))
    monkeypatch.setenv("LATENTVIZ_ALLOWED_HOSTS", "demo.example.org, lab-box")
    assert webapp.allowed_host("demo.example.org") and webapp.allowed_host("lab-box:8501")
    monkeypatch.delenv("LATENTVIZ_ALLOWED_HOSTS")
    Store(tmp_path / "ws.duckdb").add_dataset("kept", "test", pd.DataFrame({"text": ["a b c d"]}))
    monkeypatch.setattr(webapp, "request_host", lambda: "attacker.test:8501")  # a rebound name, as a browser sends it
    at = app(tmp_path / "ws.duckdb")
    assert not at.exception and "answers only at 127.0.0.1 or localhost, not at 'attacker.test:8501'" in shown(at)
    at.switch_page("views/data.py").run()
    assert not at.button and not at.dataframe  # nothing drawn, nothing to press
    assert app(tmp_path / "ws.duckdb", read_only=True).error == []  # a read-only demo answers any name


def test_failed_job_is_reported_on_the_page(app, tmp_path):
    at = app(tmp_path / "fail.duckdb")
    at.switch_page("views/data.py").run()
    at.number_input(key="bbc_limit").set_value(100)
    at.button(key="add_bbc").click().run()
    at.selectbox(key="backbone").select("other (Hugging Face id or folder)").run()
    at.text_input(key="custom_backbone").input(str(tmp_path / "no-such-model")).run()
    at.button(key="encode").click().run()
    store = Store(tmp_path / "fail.duckdb")
    assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "failed"
    at.run()
    assert "encode and map failed: cannot load backbone" in shown(at)


def test_read_only_workspace_browses_but_offers_no_changes(app, mapped_workspace):
    at = app(mapped_workspace, read_only=True)
    assert not at.exception and sum(drawn(at).values()) == 150
    at.switch_page("views/data.py").run()
    assert not at.exception
    assert "read-only" in shown(at)
    assert not [b for b in at.button if b.key in ("add_bbc", "import", "encode")]


def test_codebook_page_trains_compares_and_colours_the_map(app, mapped_workspace, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    at = app(db)
    at.switch_page("views/codebook.py").run()
    assert not at.exception
    store = Store(db)
    for quantizer in ("vq-ema", "fsq"):
        at.selectbox(key="vq_quantizer").select(quantizer).run()
        at.number_input(key="vq_steps").set_value(100)
        if quantizer == "vq-ema":
            at.select_slider(key="vq_size").set_value(32)
        at.button(key="vq_train").click().run()
        assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "done"
        at.run()  # the form is back once the job is done
    assert not at.exception
    models = store.models()["id"].tolist()
    assert len(models) == 2
    at.multiselect(key="vq_models").set_value(models).run()
    assert not at.exception
    assert at.query_params["models"] == ",".join(map(str, models))
    assert len(at.metric) == 6  # perplexity, utilisation and dead codes for each model
    assert len(at.dataframe[0].value) > 0  # the texts of the first code

    at.switch_page("views/map.py").run()
    at.selectbox(key="color").select(f"code of VQ model #{models[0]}").run()
    colours = drawn(at)
    assert not at.exception and sum(colours.values()) == 150
    assert all(name.startswith("code ") or name == "other codes" for name in colours)  # coloured by code


def test_codebook_page_without_encodings_says_what_to_do(app, tmp_path):
    at = app(tmp_path / "empty.duckdb")
    at.switch_page("views/codebook.py").run()
    assert not at.exception and "No encoded dataset yet" in shown(at)


def test_codebook_page_offers_to_resume_an_interrupted_run(app, mapped_workspace, tmp_path, tiny_bert):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    store = Store(db)

    def stop_at_30(done, total, message):
        if done == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit.vq.train(
            store,
            specs.vq(
                "bbc-news",
                backbone=tiny_bert,
                model={"codebook_size": 8},
                training={"steps": 60, "batch_size": 32, "eval_every": 10, "checkpoint_every": 20},
            ),
            progress=stop_at_30,
        )
    at = app(db)
    at.switch_page("views/codebook.py").run()
    assert not at.exception and "stopped before it finished, after step 30" in shown(at)
    # the curves it recorded before it stopped stay in view
    assert "held-out curves so far" in at.expander[0].label and len(at.get("vega_lite_chart")) >= 1
    model_id = int(store.models()["id"].iloc[0])
    at.button(key=f"vq_resume_{model_id}").click().run()
    assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "done"
    at.run()
    assert not at.exception and len(at.metric) == 3


def test_a_stopped_or_cut_off_job_says_which_and_how_to_go_on(app, tmp_path):
    store = Store(tmp_path / "jobs.duckdb")
    stopped = store.queue_job("train vae", {})
    store.claim_job(pid=1)
    store.finish_job(stopped, "interrupted", error="stopped; resume it to continue from the last checkpoint")
    at = app(tmp_path / "jobs.duckdb")
    at.switch_page("views/vae_train.py").run()
    assert "train vae: stopped; resume it to continue" in shown(at)
    cut_off = store.queue_job("train sae", {})
    store.claim_job(pid=1)
    store.mark_interrupted(cut_off, "the process running it stopped; start it again to resume")
    at.switch_page("views/sae_features.py").run()
    assert "train sae: the process running it stopped" in shown(at)


# -- Text VAE pages ----------------------------------------------------------------------------------


def test_vae_pages_without_a_model_point_to_training(app, tmp_path):
    at = app(tmp_path / "empty.duckdb")
    for page in (
        "views/vae_diagnostics.py",
        "views/vae_traverse.py",
        "views/vae_interpolate.py",
        "views/vae_arithmetic.py",
    ):
        at.switch_page(page).run()
        assert not at.exception and "No VAE yet" in shown(at), page
    at.switch_page("views/vae_train.py").run()
    assert "No data yet" in shown(at)
    Store(tmp_path / "empty.duckdb").queue_job("train vae", {})  # queued behind other work: no worker here
    for page in ("views/vae_diagnostics.py", "views/vae_traverse.py"):
        at.switch_page(page).run()
        assert not at.exception and "A VAE is on its way" in shown(at) and "is queued" in shown(at), page


def test_train_a_vae_from_the_page_then_diagnose_traverse_interpolate_and_add(app, mapped_workspace, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    at = app(db)
    at.switch_page("views/vae_train.py").run()
    assert not at.exception
    at.radio(key="vae_variant").set_value("rnn").run()
    at.number_input(key="vae_epochs_rnn").set_value(2).run()
    at.button(key="vae_train").click().run()
    store = Store(db)
    job = jobs.wait(store, int(store.jobs()["id"].iloc[0]))
    assert job["status"] == "done", job["error"]
    at.run()
    assert not at.exception
    assert at.dataframe[0].value["held_out"].iloc[0] == 15  # 10% of 150 texts
    assert [h.value for h in at.subheader][-1].endswith("during training (held-out)")  # the curves stay
    assert len(at.get("vega_lite_chart")) == 1

    at.switch_page("views/vae_diagnostics.py").run()
    assert not at.exception
    assert [m.label for m in at.metric][:2] == ["IW-NLL (K = 100)", "Perplexity (per word)"]
    prior, reconstructions = (table.proto.body for table in at.get("html"))
    assert prior.count("<tr>") == 1 + 6 and reconstructions.count("<tr>") == 1 + 4
    at.text_input(key="text_text").set_value("The striker scored twice.").run()
    assert not at.exception and len(at.dataframe[0].value) == 5

    at.switch_page("views/vae_traverse.py").run()
    assert not at.exception
    assert at.select_slider(key="vae_traverse_steps").value == steps.TRAVERSE.steps
    assert at.selectbox(key="vae_traverse_decoding").value == steps.DECODING.method
    table = at.get("html")[0].proto.body
    assert table.count("<tr>") == 7 and "σ</th>" in table  # a header and six directions
    at.radio(key="vae_traverse_kind").set_value("label").run()
    assert not at.exception and at.get("html")[0].proto.body.count("<tr>") == 2

    at.switch_page("views/vae_interpolate.py").run()
    assert not at.exception and "no map yet" in shown(at)
    assert (at.slider(key="vae_interp_steps").value, at.radio(key="vae_interp_method").value) == (
        steps.INTERPOLATE.steps,
        steps.INTERPOLATE.method,
    )
    assert at.selectbox(key="vae_interp_decoding").value == steps.DECODING.method
    at.button(key="vae_map").click().run()
    job = jobs.wait(store, int(store.jobs()["id"].iloc[0]))
    assert job["status"] == "done", job["error"]
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    assert len(at.dataframe[0].value) == steps.INTERPOLATE.steps

    at.switch_page("views/vae_arithmetic.py").run()
    assert not at.exception and at.slider(key="vae_alpha").value == max(steps.ARITHMETIC.alpha)
    assert at.get("html")[0].proto.body.count("<tr>") == len(steps.ARITHMETIC.alpha)
    assert len(at.dataframe[0].value) == 8


# -- SAE pages -----------------------------------------------------------------------------------------


def test_sae_features_page_builds_lists_and_opens_a_feature(app, tmp_path, tiny_llama, monkeypatch):
    import pandas as pd

    db = tmp_path / "sae.duckdb"
    store = Store(db)
    texts = [
        f"the {w} number {i} rose sharply today while markets fell"
        for i, w in enumerate(["price", "stock", "index", "rate"] * 15)
    ]
    store.add_dataset("news", "test", pd.DataFrame({"text": texts}))
    at = app(db)
    at.switch_page("views/sae_features.py").run()
    assert not at.exception and "No SAE yet" in shown(at)
    fit.sae.train(
        store,
        specs.sae(
            "news",
            backbone=tiny_llama,
            layer=2,
            max_tokens=400,
            model={"d_sae": 64, "k": 4},
            training={"steps": 40, "batch_size": 128, "lr": 1e-3},
        ),
    )
    at.run()
    assert not at.exception and "No feature dashboards for this SAE yet" in shown(at)
    at.button(key="sae_build").click().run()
    assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "done"
    at.run()
    assert not at.exception
    assert [m.label for m in at.metric][:2] == ["L0", "Explained variance"]
    feature = (
        int(at.query_params["feature"][0])
        if isinstance(at.query_params["feature"], list)
        else int(at.query_params["feature"])
    )
    assert f"Feature {feature}" in " ".join(h.value for h in at.subheader)
    assert "<span title=" in at.get("html")[0].proto.body  # the top examples, shaded per token
    stats = features.statistics(store, 1)
    assert feature == features.opening_feature(stats)  # not simply the densest
    at.toggle(key="sae_whole_words").set_value(True).run()  # MiniLM's WordPiece tokens: words of letters only
    promoted = [frame.value for frame in at.dataframe if "token" in frame.value][0]["token"]
    assert not at.exception and len(promoted) and all(t.isalpha() and len(t) >= 2 for t in promoted), promoted
    at.toggle(key="sae_whole_words").set_value(False).run()
    at.toggle(key="sae_map_toggle").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1  # the map of all features
    at.text_input(key="sae_search").set_value(stats.loc[feature, "label"].split(" · ")[0]).run()
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [trace["name"] for trace in figure["data"]][:2] == ["filtered out", "features"]  # the filter shows
    assert "no labels, so features have no topic" in shown(at)  # this dataset has none: density instead
    at.radio(key="sae_map_by").set_value("decoder").run()
    assert not at.exception and at.query_params["map_by"] == "decoder" and len(at.get("plotly_chart")) == 1

    at.switch_page("views/sae_text.py").run()
    assert not at.exception and at.selectbox(key="sae_steer_feature").value == feature
    at.text_input(key="text_text").set_value("the <b>price</b> rose").run()
    text_view = at.get("html")[-1].proto.body
    assert not at.exception and "&lt;" in text_view and "<b>" not in text_view  # the typed tag is escaped
    linked = re.findall(r'href="sae-features\?([^"]+)"', text_view)
    assert linked and all("model=1" in link and "feature=" in link for link in linked)  # ids open their dashboard
    (fired,) = [frame.value for frame in at.dataframe]  # the features that fired, with their activations
    assert list(fired.columns) == ["feature", "max activation", "tokens", "label"]
    assert fired["max activation"].is_monotonic_decreasing and (fired["max activation"] > 0).all()
    assert (fired["label"] != "").all() and (fired["tokens"] >= 1).all()
    strength = at.slider(key="sae_strength")
    assert (strength.value, at.text_input(key="sae_prompt").value) == (steps.STEER.strength, steps.STEER.prompt)
    strength.set_value(10.0).run()
    at.button(key="sae_steer").click().run()
    plain, steered = (h.proto.body for h in at.get("html")[-2:])  # unsteered and steered, side by side
    assert not at.exception and plain.startswith("<div>The news today is") and plain != steered
    assert "background:#FFE08A" in steered  # where the steered text departs is marked
    read_back = re.search(
        r"mean activation on each text, read back by the SAE: ([\d.]+) unsteered, ([\d.]+) steered", shown(at)
    )
    result = features.steer(Store(db), 1, feature, steps.STEER.prompt, 10.0)  # the same two texts, computed here
    assert read_back and list(read_back.groups()) == [numbers.figure(v) for v in result.activation]


def test_sae_can_be_trained_from_the_train_page(app, tmp_path, tiny_llama, monkeypatch):
    import pandas as pd

    db = tmp_path / "sae.duckdb"
    store = Store(db)
    store.add_dataset(
        "news", "test", pd.DataFrame({"text": [f"the price number {i} rose sharply today" for i in range(60)]})
    )
    real, go = fit.sae.train, threading.Event()

    def held_then_small(workspace, run, progress):  # waits for the test, then the page's settings on a tiny LM and run
        go.wait(60)
        small = specs.spec(
            run,
            backbone=tiny_llama,
            layer=2,
            max_tokens=300,
            model={"d_sae": 32},
            training={"steps": 20, "batch_size": 64},
        )
        return real(workspace, small, progress)

    monkeypatch.setattr(fit.sae, "train", held_then_small)
    at = app(db)
    at.switch_page("views/sae_train.py").run()
    at.button(key="sae_train").click().run()
    job_id = int(store.jobs()["id"].iloc[0])
    assert "A run of this kind is queued" in shown(at) and not [b for b in at.button if b.key == "sae_train"]
    worker = threading.Thread(target=jobs.work, args=(store,), kwargs={"idle_exit": 1.0, "poll": 0.05})
    worker.start()
    while store.job(job_id)["status"] == "queued":
        time.sleep(0.05)
    at.run()  # while the job runs: its progress instead of the form, so it cannot be started twice
    assert "Preparing the training data" in [h.value for h in at.subheader] and not [
        b for b in at.button if b.key == "sae_train"
    ]
    (live,) = [e for e in at.get("component_instance") if e.proto.component_name.endswith("job_watch")][1:]
    assert json.loads(live.proto.json_args)["empty"].startswith("No curves yet")  # what its frame says, for now
    go.set()
    worker.join(120)
    job = store.job(job_id)
    assert job["status"] == "done", job["error"]
    at.run()
    assert not at.exception and [m.label for m in at.metric][0] == "L0" and store.has_feature_activations(1)
    assert not at.warning  # no warning where the curves said nothing
    row = store.model(1)  # a run whose curves said its rate was too high: the page says what they said
    store.finish_model(1, row["checkpoint"], {**row["metrics"], "warning": "held-out FVU rose from 0.2 to 0.3"})
    at.run()
    assert "This run's curves say:** held-out FVU rose" in at.warning[0].value


def test_queue_positions_read_as_english():
    from latentviz.job_watch import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)] == [
        "next",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "101st",
        "111th",
    ]


def test_typed_text_can_be_kept_out_of_the_url(app, mapped_workspace, tmp_path, monkeypatch):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    monkeypatch.setenv("LATENTVIZ_TEXT_IN_URL", "0")  # as `serve --bundle` sets it
    at = app(db)
    at.text_input(key="q").input("said").run()
    assert not at.exception and "“said”" in shown(at) and "q" not in at.query_params  # searched, not recorded
    monkeypatch.setenv("LATENTVIZ_TEXT_IN_URL", "1")
    at.text_input(key="q").input("market").run()
    assert at.query_params["q"] == "market"  # by default a link reproduces the search


@pytest.mark.integration  # the label scorer is the packaged MiniLM
def test_sae_evaluate_and_compare_pages_run_their_jobs_and_show_the_results(app, trained_copy, tiny_llama, monkeypatch):
    from test_evals import planted_copy

    store, db = trained_copy, trained_copy.path
    sae_id = int(store.models().query("kind == 'sae'")["id"].iloc[0])
    at = app(db)
    at.switch_page("views/sae_evaluate.py").run()
    assert not at.exception and "Not evaluated yet" in shown(at)
    assert len(at.get("vega_lite_chart")) == 1  # the frontier, with this SAE's training figures
    at.button(key="sae_evaluate").click().run()
    assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "done"
    at.run()
    assert not at.exception
    assert [m.label for m in at.metric] == [
        "CE loss recovered",
        "KL score",
        "KL with the SAE",
        "Shrinkage γ",
        "Mean label score",
        "Labels scoring ≥ 0.8",
        "Scored",
    ]
    assert len(at.get("vega_lite_chart")) == 4  # the scores with their intervals, probing, label scores, frontier
    (probed,) = [frame.value for frame in at.dataframe]
    assert {"92_glue_sst2", "mean"} <= set(probed["task"]) and list(probed.columns)[1:3] == ["dense", "k=1"]
    assert "held-out texts of 'bbc-news'" in shown(at)
    assert "Not measured: the LM's activations here do not tell first letters apart" in shown(at)  # a random LM
    assert "Also explain" in at.checkbox(key="sae_explain").label  # LLM explanations are asked for by name

    # explanations by the tiny LM (short windows: the tiny SAE fires often), then on both pages
    monkeypatch.setattr(evals.explanations, "WINDOW", 8)
    spec = steps.Evaluate(model=sae_id, evaluations=["explanations"], explainer=tiny_llama, explain_features=2)
    evals.evaluate(store, spec)
    at.run()
    assert not at.exception and "LLM explanations, scored" in " ".join(h.value for h in at.subheader)
    frames = {tuple(frame.value.columns)[0]: frame.value for frame in at.dataframe}
    assert frames["scorer"]["scorer"].tolist()[:2] == ["detection", "detection_auroc"]
    assert frames["scorer"].notna().all().all()
    assert len(frames["feature"]) == len(store.explanations(sae_id)) > 0
    explained = int(store.explanations(sae_id)["feature"].iloc[0])
    at.switch_page("views/sae_features.py")
    at.query_params["feature"] = str(explained)
    at.run()
    assert not at.exception and any("explains it as:" in h.proto.body for h in at.get("html"))

    at.switch_page("views/sae_compare.py").run()
    assert not at.exception and "Nothing to compare with yet" in shown(at)
    copy_id, order = planted_copy(store, sae_id)
    at.run()
    assert not at.exception and "Not matched yet" in shown(at) and at.selectbox(key="sae_other").value == copy_id
    at.button(key="sae_compare").click().run()
    assert jobs.wait(store, int(store.jobs()["id"].iloc[0]))["status"] == "done"
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PW-MCC (decoder)"] == "1" and metrics["Matched"] == "100%"
    feature = int(
        at.query_params["feature"][0] if isinstance(at.query_params["feature"], list) else at.query_params["feature"]
    )
    heading = " ".join(h.value for h in at.subheader)
    assert f"Feature {feature} of #{sae_id} and feature {list(order).index(feature)} of #{copy_id}: matched" in heading
    assert "<span title=" in at.get("html")[0].proto.body  # the first SAE's top examples (its dashboards are built)
    assert "dashboards are not built" in shown(at)  # the copy's are not


def test_an_evaluation_that_could_not_run_says_why_and_the_rest_still_draw(app, trained_copy):
    store, db = trained_copy, trained_copy.path
    sae_id = int(store.models().query("kind == 'sae'")["id"].iloc[0])
    store.set_evaluation(sae_id, "core", {"not_measured": "SAE 3 belongs to no dataset"}, 0.1, 0)
    at = app(db)
    at.switch_page("views/sae_evaluate.py").run()
    assert not at.exception and "Not measured: SAE 3 belongs to no dataset." in shown(at)
    assert len(at.get("vega_lite_chart")) == 1  # the frontier, from the training's figures


def test_a_model_whose_checkpoint_is_gone_is_named_in_one_line_not_a_traceback(app, trained_copy):
    from latentviz import settings

    vq_id = int(trained_copy.models().query("kind == 'vq'")["id"].iloc[0])
    shutil.rmtree(settings.models_dir(trained_copy.path) / str(vq_id))  # a workspace copied without its models
    at = app(trained_copy.path)
    at.switch_page("views/codebook.py").run()
    assert not at.exception
    (error,) = at.error
    assert "no cfg.json" in error.value and "\n" not in error.value
