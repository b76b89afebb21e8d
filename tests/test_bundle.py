"""Bundles (latentviz export / serve --bundle): trimmed, checksummed, movable, refused when damaged."""

import json

import duckdb
import pytest

from latentviz import bundle
from latentviz.cli import main
from latentviz.errors import LatentvizError
from latentviz.models import base
from latentviz.store import EXPORTED, NOT_EXPORTED, SCHEMA_VERSION, Store, copy_workspace


def test_every_table_is_either_exported_or_left_out_on_purpose(store):
    with duckdb.connect(str(store.path), read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == set(EXPORTED) | set(NOT_EXPORTED)


def test_a_bundle_names_the_maps_its_workspace_never_named(mapped_workspace, tmp_path):
    older = tmp_path / "older.duckdb"
    copy_workspace(mapped_workspace, older)
    with duckdb.connect(str(older)) as con:  # maps made before schema v13 kept their names
        con.execute("UPDATE projections SET area_names = NULL")
    bundle.export(Store(older, read_only=True), tmp_path / "demo")
    copy, named = Store(bundle.check(tmp_path / "demo"), read_only=True), Store(mapped_workspace, read_only=True)
    for projection_id in named.projections()["id"].astype(int):
        assert named.area_names(projection_id) and copy.area_names(projection_id) == named.area_names(projection_id)


def test_export_keeps_only_what_is_shown_and_moves_with_its_folder(trained_workspace, tmp_path):
    source = Store(trained_workspace, read_only=True)
    model_ids = source.models()["id"].astype(int).tolist()  # a VQ model, an SAE and a VAE
    manifest = bundle.export(source, tmp_path / "demo", datasets=["bbc-news"])
    assert manifest["datasets"] == ["bbc-news"] and [m["id"] for m in manifest["models"]] == model_ids
    assert manifest["schema"] == SCHEMA_VERSION and "workspace.duckdb" in manifest["files"]
    assert all(any(name.startswith(f"workspace.models/{i}/") for name in manifest["files"]) for i in model_ids)
    assert not (tmp_path / "demo.partial").exists()

    moved = tmp_path / "elsewhere" / "demo"
    moved.parent.mkdir()
    (tmp_path / "demo").rename(moved)  # checkpoints are relative to the bundle: it works anywhere
    copy = Store(bundle.check(moved), read_only=True)
    assert copy.datasets()["name"].tolist() == ["bbc-news"]
    assert len(copy.texts("bbc-news")) == len(source.texts("bbc-news"))
    assert copy.projections()["id"].tolist() == source.projections()["id"].tolist()
    for projection_id in source.projections()["id"].astype(int):  # named once: a read-only copy only reads them
        names = source.area_names(projection_id)
        assert names and copy.area_names(projection_id) == names
    for model_id in model_ids:
        checkpoint = copy.model(model_id)["checkpoint"]
        assert checkpoint.startswith(str(moved)) and base.load(checkpoint) is not None
    sae_id = int(source.models().set_index("kind").loc["sae", "id"])  # its dashboards came along too
    assert copy.feature_summaries(sae_id).equals(source.feature_summaries(sae_id))
    assert copy.feature_texts(sae_id).equals(source.feature_texts(sae_id))  # read from the bundle's own shards
    shards = [name for name in manifest["files"] if name.startswith("workspace.arrays/")]
    assert {name.split("/")[1] for name in shards} == {"encodings", "feature_activations"}
    ids, vectors = copy.vectors(int(copy.projections()["encoding_id"].iloc[0]))
    assert len(ids) == len(source.texts("bbc-news")) and vectors.shape[0] == len(ids)


def test_a_damaged_or_newer_bundle_gets_one_clear_line(trained_workspace, tmp_path):
    folder = tmp_path / "demo"
    bundle.export(Store(trained_workspace, read_only=True), folder)
    assert bundle.check(folder) == folder / "workspace.duckdb"

    checkpoint = next(p for p in (folder / "workspace.models").rglob("*") if p.is_file())
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    with pytest.raises(LatentvizError, match="does not match its checksum"):
        bundle.check(folder)
    checkpoint.write_bytes(original)

    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"schema": SCHEMA_VERSION + 1}))
    with pytest.raises(LatentvizError, match="upgrade latentviz"):
        bundle.check(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(LatentvizError, match="not a latentviz bundle"):
        bundle.check(folder)


def test_export_refuses_what_it_cannot_do_and_leaves_nothing(trained_workspace, tmp_path):
    source = Store(trained_workspace, read_only=True)
    (tmp_path / "taken").mkdir()
    with pytest.raises(LatentvizError, match="already exists"):
        bundle.export(source, tmp_path / "taken")
    with pytest.raises(LatentvizError, match="no dataset named 'nope'"):
        bundle.export(source, tmp_path / "a", datasets=["nope"])
    with pytest.raises(LatentvizError, match="no finished model with id 999"):
        bundle.export(source, tmp_path / "b", model_ids=[999])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_cli_export_prints_sizes_and_serve_checks_the_bundle_first(trained_workspace, tmp_path, capsys):
    assert main(["export", "--db", str(trained_workspace), "--out", str(tmp_path / "demo")]) == 0
    out, err = capsys.readouterr()
    assert "workspace.duckdb" in out and "total" in out and "latentviz serve --bundle" in err
    assert "workspace.arrays/encodings/encoding_id=" in out and ".parquet" not in out  # an encoding's shards: one part
    (tmp_path / "demo" / "workspace.duckdb").write_bytes(b"not a database")
    assert main(["serve", "--bundle", str(tmp_path / "demo")]) == 2
    assert "does not match its checksum" in capsys.readouterr().err


def test_a_bundle_is_never_served_writable(trained_workspace, tmp_path, capsys):
    assert main(["export", "--db", str(trained_workspace), "--out", str(tmp_path / "demo")]) == 0
    capsys.readouterr()
    assert main(["serve", "--bundle", str(tmp_path / "demo"), "--address", "0.0.0.0", "--allow-writes"]) == 2
    assert "served read-only: drop --allow-writes" in capsys.readouterr().err


def test_a_bundle_holds_what_serving_reads_readable_by_anyone(trained_workspace, tmp_path):
    folder = tmp_path / "demo"
    bundle.export(Store(trained_workspace, read_only=True), folder)
    checkpoints = {p.name for p in (folder / "workspace.models").rglob("*") if p.is_file()}
    assert checkpoints == {"cfg.json", "model.safetensors"}  # no optimizer or trainer state
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in folder.rglob("*"))  # any uid can read it


def test_serve_bundle_checks_what_it_claims(trained_workspace, tmp_path):
    """Names inside the bundle only, no links, nothing unlisted, a malformed manifest in one line."""
    import shutil

    folder = tmp_path / "demo"
    bundle.export(Store(trained_workspace, read_only=True), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    secret = tmp_path / "secret.txt"
    secret.write_text("not for visitors")
    entry = {"bytes": secret.stat().st_size, "sha256": bundle._sha256(secret)}

    def damaged(files, match):
        (folder / "manifest.json").write_text(json.dumps(manifest | {"files": files}))
        with pytest.raises(LatentvizError, match=match):
            bundle.check(folder)

    damaged(manifest["files"] | {"../secret.txt": entry}, "names '../secret.txt', outside the bundle")
    damaged(manifest["files"] | {str(secret): entry}, "outside the bundle")
    damaged(list(manifest["files"]), "its files are not a name")
    damaged(manifest["files"] | {"x": {"sha256": "0"}}, "its files are not a name")
    damaged(manifest["files"] | {"x": "abc"}, "its files are not a name")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert bundle.check(folder) == folder / "workspace.duckdb"

    (folder / "notes.txt").write_text("unlisted")
    with pytest.raises(LatentvizError, match="holds 'notes.txt', which its manifest does not list"):
        bundle.check(folder)
    (folder / "notes.txt").unlink()
    models = folder / "workspace.models"
    shutil.move(models, tmp_path / "real-models")
    models.symlink_to(tmp_path / "real-models")  # the checkpoints behind a link
    with pytest.raises(LatentvizError, match="workspace.models is a link; a bundle holds only files"):
        bundle.check(folder)


def test_export_never_deletes_a_folder_it_did_not_make(trained_workspace, tmp_path):
    notes = tmp_path / "demo.partial"
    notes.mkdir()
    (notes / "mine.txt").write_text("someone's notes")
    with pytest.raises(LatentvizError, match="demo.partial already exists"):
        bundle.export(Store(trained_workspace, read_only=True), tmp_path / "demo")
    assert (notes / "mine.txt").read_text() == "someone's notes"
