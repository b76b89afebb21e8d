"""Run specs: every default written once. The CLI's flags, the pages' form defaults and the specs
agree; a stored run record reads back as the spec, old records included."""

from dataclasses import asdict, fields, replace
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from latentviz import cli, flags, runs
from latentviz.errors import ConfigError, LatentvizError
from latentviz.store import Store, copy_workspace

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def parsed(*argv):
    return cli.parser().parse_args(list(argv))


@pytest.mark.parametrize("family", ["vq", "vae", "sae"])
def test_the_cli_defaults_are_the_spec(family):
    spec = runs.FAMILIES[family].run()
    assert flags.from_flags(spec, parsed("train", family)) == spec


@pytest.mark.parametrize("family", ["vq", "vae", "sae"])
def test_every_flag_help_states_the_specs_default(family, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # one line per flag: no wrapping inside a value
    train = next(a for a in cli.parser()._subparsers._group_actions[0].choices["train"]._subparsers._group_actions)
    text = train.choices[family].format_help()
    for path, value in flags.defaults(runs.FAMILIES[family].run()).items():
        if value in (None, ""):
            continue
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        assert f"(default: {shown})" in text, path


def test_flags_reach_the_nested_configs():
    run = flags.from_flags(
        runs.VQRun(),
        parsed(
            "train",
            "vq",
            "--dataset",
            "d",
            "--quantizer",
            "fsq",
            "--levels",
            "7,5,3",
            "--no-kmeans-init",
            "--codes",
            "2",
            "--steps",
            "50",
            "--lr",
            "0.01",
        ),
    )
    assert run.dataset == "d" and run.model.quantizer == "fsq" and run.model.levels == [7, 5, 3]
    assert not run.model.kmeans_init and run.model.groups == 2 and run.training.steps == 50 and run.training.lr == 0.01
    run = flags.from_flags(runs.SAERun(), parsed("train", "sae", "--arch", "standard", "--width", "64", "--l1", "2"))
    assert (run.model.architecture, run.model.d_sae, run.model.l1_coefficient) == ("standard", 64, 2.0)
    with pytest.raises(ConfigError, match="--levels takes integers"):
        flags.from_flags(runs.VQRun(), parsed("train", "vq", "--levels", "8,x"))


def test_capture_reads_the_sae_specs_defaults():
    args = parsed("capture", "--dataset", "d")
    run = flags.from_flags(runs.SAERun(), args)
    assert replace(run, dataset="") == runs.SAERun()


def test_derived_fields_and_vae_steps_get_no_flag():
    options = flags.defaults(runs.VAERun())
    assert "training.steps" not in options and "model.vocab" not in options and "model.d_in" not in options
    assert "layer" in flags.defaults(runs.SAERun()) and "model.layer" not in flags.defaults(runs.SAERun())


def test_presets_differ_from_their_spec_only_where_they_say():
    def changed(a, b, prefix=""):
        out = set()
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            out |= (
                changed(x, y, f"{f.name}.")
                if hasattr(x, "__dataclass_fields__")
                else ({prefix + f.name} if x != y else set())
            )
        return out

    assert changed(runs.SAE_QUICK, runs.SAERun()) == {"max_tokens", "training.steps"}
    assert changed(runs.VAE_LM_DECODER, runs.VAERun()) == {"epochs", "model.variant"}
    assert changed(runs.VQ_TOKENS, runs.VQRun()) == {"tokens", "backbone", "layer", "model.groups"}


def test_a_stored_run_record_round_trips(tmp_path):
    store = Store(tmp_path / "ws.duckdb")
    store.add_dataset("d", "test", pd.DataFrame({"text": ["a b c"] * 3}))
    for kind, run in (("vq", runs.VQ_TOKENS), ("vae", runs.VAERun()), ("sae", runs.SAE_QUICK)):
        run = replace(run, dataset="d")
        model_id = store.add_model(kind, "m", "d", "b", runs.to_record(run, capture=3))
        row = store.model(model_id)
        assert runs.from_record(row) == run and row["config"]["data"] == {"capture": 3}


def test_records_written_before_run_specs_still_load():
    """Model rows as the pipeline wrote them before run specs: model, training and a data dict."""
    vq = {
        "kind": "vq",
        "dataset": "d",
        "backbone": "smollm2",
        "config": {
            "model": {**asdict(runs.VQRun().model), "groups": 1, "kmeans_init": False},
            "training": asdict(runs.VQRun().training),
            "data": {"unit": "token", "layer": 8, "max_tokens": 5000},
        },
    }
    run = runs.from_record(vq)
    assert (
        run.tokens
        and run.layer == 8
        and run.max_tokens == 5000
        and not run.model.kmeans_init
        and run.backbone == "smollm2"
    )
    # The old VAE record stored the options it was given; skip did not exist in the oldest checkpoints.
    vae = {
        "kind": "vae",
        "dataset": "d",
        "backbone": "minilm",
        "config": {
            "model": {"variant": "rnn", "latent_dim": 4, "hidden": 64},
            "training": {"steps": 60, "batch_size": 16, "lr": 3e-3},
            "data": {"vocab_size": 1000},
        },
    }
    run = runs.from_record(vae)
    assert run.vocab_size == 1000 and run.model.latent_dim == 4 and run.training.steps == 60 and run.model.skip is False
    sae = {
        "kind": "sae",
        "dataset": "",
        "backbone": "smollm2",
        "config": {  # an imported SAE: no training
            "model": {**asdict(runs.SAERun().model), "layer": 5, "site": "mlp_out"},
            "data": {"imported_from": "x"},
        },
    }
    run = runs.from_record(sae)
    assert (run.layer, run.site, run.training) == (5, "mlp_out", runs.SAERun().training)


def test_user_errors_share_one_base_and_bugs_do_not():
    from latentviz.backbones import BackboneError
    from latentviz.corpus import CorpusError
    from latentviz.models.base import CheckpointError
    from latentviz.projection import ProjectionError
    from latentviz.store import StoreError

    for error in (BackboneError, CorpusError, CheckpointError, ProjectionError, StoreError, ConfigError):
        assert issubclass(error, LatentvizError) and not issubclass(error, ValueError)


def test_a_bug_is_not_shown_as_a_one_line_user_error(monkeypatch, tmp_path):
    from latentviz import pipeline

    def broken(*args, **kwargs):
        raise ValueError("an internal fault")

    monkeypatch.setattr(pipeline, "ingest", broken)
    with pytest.raises(ValueError, match="an internal fault"):
        cli.main(["ingest", "bbc-news", "--db", str(tmp_path / "ws.duckdb")])


# -- the pages' forms --------------------------------------------------------------------------------


@pytest.fixture
def page(monkeypatch, mapped_workspace, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    monkeypatch.setenv("LATENTVIZ_DB", str(db))
    monkeypatch.setenv("LATENTVIZ_READ_ONLY", "0")
    monkeypatch.setenv("LATENTVIZ_BOOTSTRAP", "0")

    def open_page(path):
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(path).run()
        assert not at.exception
        return at

    return open_page


def test_the_codebook_form_defaults_are_the_spec(page):
    at = page("views/codebook.py")
    spec = runs.VQRun()
    assert at.selectbox(key="vq_quantizer").value == spec.model.quantizer
    assert at.number_input(key="vq_steps").value == spec.training.steps
    assert at.select_slider(key="vq_size").value == spec.model.codebook_size
    assert at.number_input(key="vq_codes").value == spec.model.groups
    assert at.checkbox(key="vq_kmeans").value == spec.model.kmeans_init
    assert at.checkbox(key="vq_restart").value == spec.model.restart_dead
    assert at.checkbox(key="vq_rotation").value == spec.model.rotation_trick
    assert at.checkbox(key="vq_cosine").value == spec.model.cosine
    at.selectbox(key="vq_quantizer").select("rvq").run()
    assert at.number_input(key="vq_stages").value == spec.model.stages
    at.selectbox(key="vq_quantizer").select("fsq").run()
    assert at.text_input(key="vq_levels").value == ",".join(map(str, spec.model.levels))
    at.radio(key="vq_unit").set_value("token activations of a language model").run()
    tokens = runs.VQ_TOKENS
    assert at.selectbox(key="vq_token_backbone").value == tokens.backbone
    assert at.number_input(key="vq_token_layer").value == tokens.layer


def test_the_vae_form_defaults_are_the_spec(page):
    at = page("views/vae_train.py")
    spec = runs.VAERun()
    assert at.radio(key="vae_variant").value == spec.model.variant
    assert at.number_input(key=f"vae_epochs_{spec.model.variant}").value == spec.epochs
    assert at.select_slider(key="vae_dim").value == spec.model.latent_dim
    assert at.number_input(key="vae_beta").value == spec.model.beta
    assert at.selectbox(key="vae_anneal").value == spec.model.anneal
    assert at.number_input(key="vae_free_bits").value == spec.model.free_bits
    assert at.slider(key="vae_word_dropout").value == spec.model.word_dropout
    assert at.number_input(key="vae_iw").value == spec.model.iw_samples
    assert at.select_slider(key="vae_hidden").value == spec.model.hidden
    assert at.number_input(key="vae_vocab").value == spec.vocab_size
    assert at.select_slider(key="vae_batch").value == spec.training.batch_size
    assert at.select_slider(key="vae_lr").value == spec.training.lr
    at.radio(key="vae_variant").set_value("pretrained-decoder").run()
    assert at.number_input(key="vae_epochs_pretrained-decoder").value == runs.VAE_LM_DECODER.epochs


def test_the_sae_form_defaults_are_the_quick_preset(page):
    at = page("views/sae_train.py")
    spec = runs.SAE_QUICK
    assert at.number_input(key="sae_layer").value == spec.layer
    assert at.selectbox(key="sae_site").value == spec.site
    assert at.selectbox(key="sae_arch").value == spec.model.architecture
    assert at.select_slider(key="sae_width").value == spec.model.d_sae
    assert at.number_input(key="sae_k").value == spec.model.k
    assert at.select_slider(key="sae_tokens").value == spec.max_tokens
    assert at.number_input(key="sae_steps").value == spec.training.steps
