"""The folders our own Streamlit components are served from (Streamlit's component protocol by hand,
no build step): the component's page as index.html beside the files it loads, and, under it, a
folder per server process for files the server publishes there for the browser to fetch over plain
HTTP (the map's points, the job queue's progress), named by a random token only this process's
pages are told. Put together on first use, in the user's cache, or the temporary folder where the
home is read-only (a container)."""

from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from latentviz import settings
from latentviz.constants import SITE_INDEX

PUBLISHED = "published"  # under a component's folder: one folder per server process
STALE_S = 7 * 24 * 3600  # another process's published files, untouched this long, are removed
_TOKEN = secrets.token_urlsafe(12)


def folder(page: str, files: dict | None = None) -> Path:
    """A component's folder: the package's `page` as index.html, and `files` (name: source path) beside it.
    Its name changes with their content, so a new version never meets an old browser cache."""
    content = resources.files("latentviz").joinpath(page).read_bytes()
    digest = hashlib.sha256(content)
    for name, source in sorted((files or {}).items()):
        digest.update(name.encode() + Path(source).read_bytes())
    name = f"{Path(page).stem.replace('_', '-')}-{digest.hexdigest()[:12]}"
    for parent in (settings.user_cache(), Path(tempfile.gettempdir())):
        found = parent / name
        if (found / SITE_INDEX).exists() and os.access(found, os.W_OK):  # files are published into it
            return found
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=name + "."))
            for file, source in (files or {}).items():
                shutil.copyfile(source, staging / file)
            (staging / SITE_INDEX).write_bytes(content)
            try:
                os.replace(staging, found)  # all at once: another process never sees half a folder
            except OSError:  # another process got there first
                shutil.rmtree(staging, ignore_errors=True)
            return found
        except OSError:
            continue
    raise OSError(f"no writable folder for the browser files of {page}")


def own_folder(component: Path) -> Path:
    """This server process's folder of published files under a component's folder, removed when the
    process ends; those of processes gone a week are cleared on the way."""
    own = component / PUBLISHED / _TOKEN
    if not own.exists():
        for other in (component / PUBLISHED).glob("*"):
            if time.time() - other.stat().st_mtime > STALE_S:
                shutil.rmtree(other, ignore_errors=True)
        own.mkdir(parents=True)
        atexit.register(shutil.rmtree, own, ignore_errors=True)
    return own


def relative(component: Path, path: Path) -> str:
    """A published file's path as its component's page fetches it."""
    return path.relative_to(component).as_posix()


def write(path: Path, content: bytes) -> None:
    """All at once: the browser never reads half a file."""
    staging = path.with_name(path.name + ".partial")
    staging.write_bytes(content)
    os.replace(staging, path)
