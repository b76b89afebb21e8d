"""Bundles: a trained workspace in a folder of its own, to hand to someone or to host read-only.

    DIR/workspace.duckdb        the workspace trimmed to what is shown (store.Store.copy_into)
    DIR/workspace.arrays/       the Parquet shards it catalogs: its encodings' vectors, its SAEs'
                                feature activations
    DIR/workspace.models/<id>/  the checkpoints its models load (cfg.json and the weights: no
                                optimizer or trainer state, which only resuming reads)
    DIR/manifest.json           versions, schema, what it holds, and every file's size and sha256

`latentviz serve --bundle DIR` checks the manifest first (`check`: every file listed, inside the
folder, no link, each checksum), then serves the folder read-only. Every file is readable by any
user (a bundle mounted into a container runs as another uid). The manifest is written last, and the
folder is built under a temporary name and renamed when complete, so a failed export leaves nothing
that looks like a bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from latentviz import __version__, pipeline, settings
from latentviz.constants import BUNDLE_WORKSPACE as WORKSPACE
from latentviz.constants import CONFIG_FILE, WEIGHTS_FILE
from latentviz.constants import MANIFEST_FILE as MANIFEST
from latentviz.errors import LatentvizError
from latentviz.store import SCHEMA_VERSION, Store

MODELS = settings.models_dir(Path(WORKSPACE)).name  # where the served app looks for checkpoints
ARRAYS = settings.arrays_dir(Path(WORKSPACE)).name  # its vectors and feature activations (store/arrays.py)
SERVED = (CONFIG_FILE, WEIGHTS_FILE)  # what loading a checkpoint reads (models/base.load)


def export(store: Store, out: Path, *, datasets: list[str] | None = None, model_ids: list[int] | None = None) -> dict:
    """Write the bundle folder `out` (which must not exist yet); returns its manifest. What goes in:
    see `choose`."""
    datasets, chosen = choose(store, datasets, model_ids)
    with building(Path(out)) as staging:
        store.copy_into(staging / WORKSPACE, datasets, [int(i) for i in chosen["id"]], MODELS)
        copied = Store(staging / WORKSPACE)
        maps = [int(i) for i in copied.projections()["id"]]
        for projection_id in maps:  # a map made before its names were kept is named here, once: the
            pipeline.area_names(copied, projection_id)  # served copy, read-only, could not keep them
        for model_id in chosen["id"].astype(int):
            checkpoint, copy = Path(store.model(model_id)["checkpoint"]), staging / MODELS / str(model_id)
            copy.mkdir(parents=True)
            for name in SERVED:
                shutil.copyfile(checkpoint / name, copy / name)
        manifest = {
            "latentviz": __version__,
            "schema": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "datasets": datasets,
            "maps": maps,
            "models": [
                {"id": int(r.id), "kind": r.kind, "name": r.name, "dataset": r.dataset, "backbone": r.backbone}
                for r in chosen.itertuples()
            ],
            "files": {
                path.relative_to(staging).as_posix(): {"bytes": path.stat().st_size, "sha256": _sha256(path)}
                for path in sorted(staging.rglob("*"))
                if path.is_file()
            },
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for path in [staging, *staging.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    return manifest


@contextmanager
def building(out: Path):
    """A new folder, written under `out.partial` and renamed to `out` once complete: a failed export
    leaves nothing that looks like a finished one."""
    if out.exists():
        raise LatentvizError(f"{out} already exists: choose a new folder, or remove it first")
    staging = out.with_name(out.name + ".partial")
    if staging.exists():  # never deleted here: it may be a failed export, or someone's folder
        raise LatentvizError(f"{staging} already exists (a failed export, or another folder): remove it first")
    staging.mkdir(parents=True)
    try:
        yield staging
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def choose(store: Store, datasets: list[str] | None, model_ids: list[int] | None) -> tuple[list[str], pd.DataFrame]:
    """The datasets and the finished models (rows of Store.models) a bundle or a static site shows.

    datasets: default every dataset, or those of the chosen models; model_ids: default every finished
    model of those datasets. An SAE goes in only with its dashboards built (`latentviz features`)."""
    models = store.models()
    finished = models[models["checkpoint"].notna()]
    if model_ids is not None:
        unknown = sorted(set(model_ids) - set(finished["id"].astype(int)))
        if unknown:
            raise LatentvizError(f"no finished model with id {unknown[0]}: `latentviz info` lists the models")
    known = store.datasets()["name"].tolist()
    if datasets is None:
        chosen = finished[finished["id"].isin(model_ids)] if model_ids is not None else finished
        datasets = known if model_ids is None else sorted(set(chosen["dataset"].dropna()))
    missing = [name for name in datasets if name not in known]
    if missing:
        raise LatentvizError(f"no dataset named {missing[0]!r}: the workspace has {', '.join(known) or 'none'}")
    if model_ids is None:
        model_ids = finished[finished["dataset"].isin(datasets) | finished["dataset"].isna()]["id"].astype(int).tolist()
    chosen = finished[finished["id"].isin(model_ids)]
    for row in chosen.itertuples():
        if row.kind == "sae" and not store.has_feature_dashboards(int(row.id)):
            raise LatentvizError(
                f"SAE #{row.id} has no stored dashboards: run `latentviz features {row.id}` first, "
                "or leave it out with --models"
            )
    return sorted(set(datasets) | set(chosen["dataset"].dropna())), chosen  # a model's examples: its dataset's texts


def check(folder: Path) -> Path:
    """The bundle's workspace file, once its manifest, schema and every checksum hold, every file is
    listed and inside the folder, and nothing in it is a link; otherwise one line that says what is wrong."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise LatentvizError(
            f"{folder} is not a latentviz bundle (no {MANIFEST}): make one with `latentviz export`"
        ) from None
    except json.JSONDecodeError as error:
        raise LatentvizError(f"{folder / MANIFEST} is not valid JSON ({error.msg}): export the bundle again") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(_is_entry(entry) for entry in files.values()):
        raise LatentvizError(f"{folder / MANIFEST}: its files are not a name → {{bytes, sha256}} map: export it again")
    schema = manifest.get("schema")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise LatentvizError(
            f"bundle {folder} was made by latentviz {manifest.get('latentviz')} (workspace schema v{schema}); this "
            f"latentviz {__version__} reads v{SCHEMA_VERSION}: upgrade latentviz to serve it"
        )
    if schema < SCHEMA_VERSION:
        raise LatentvizError(
            f"bundle {folder} has workspace schema v{schema}, older than this latentviz's v{SCHEMA_VERSION}: "
            "export it again with this version"
        )
    found = _files(folder)  # every file really there, links refused
    for name, expected in files.items():
        if name not in found:
            outside = Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name
            raise LatentvizError(
                f"bundle {folder}: its manifest names {name!r}, "
                + ("outside the bundle: export it again" if outside else "which it lacks: copy the whole folder again")
            )
        path = folder / name
        if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise LatentvizError(f"bundle {folder}: {name} does not match its checksum (changed or damaged)")
    unlisted = sorted(set(found) - set(files) - {MANIFEST})
    if unlisted:
        raise LatentvizError(f"bundle {folder} holds {unlisted[0]!r}, which its manifest does not list: remove it")
    if WORKSPACE not in files:
        raise LatentvizError(f"bundle {folder}: its manifest lists no {WORKSPACE}: export it again")
    return folder / WORKSPACE


def _is_entry(entry) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and isinstance(entry.get("sha256"), str)


def _files(folder: Path) -> set[str]:
    """The relative names of every file under `folder`; a link anywhere (file or folder) is refused."""
    names = set()
    for root, directories, files in os.walk(folder, followlinks=False):
        for name in [*directories, *files]:
            path = Path(root) / name
            if path.is_symlink():
                raise LatentvizError(
                    f"bundle {folder}: {path.relative_to(folder)} is a link; a bundle holds only files"
                )
        names |= {(Path(root) / name).relative_to(folder).as_posix() for name in files}
    return names


def sizes(folder: Path, grouped: dict[str, int] | None = None) -> dict[str, int]:
    """Bytes per part of an export folder (a bundle, or a static site with grouped={"data": 2}): each
    file, except that everything under a `grouped` folder's first levels is one part (a model's
    checkpoint, an encoding's or an SAE's shards, an SAE's dashboards); and the total."""
    grouped = grouped or {MODELS: 2, ARRAYS: 3}
    parts: dict[str, int] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).parts
            depth = grouped.get(name[0], len(name))
            part = "/".join(name[:depth])
            parts[part] = parts.get(part, 0) + path.stat().st_size
    return parts | {"total": sum(parts.values())}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
