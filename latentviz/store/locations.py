"""Where a workspace's shard files live: a local folder, or a folder on object storage named by a URL
(s3://bucket/prefix, gs://..., any filesystem fsspec knows), reached through fsspec. Paths and URLs
are plain strings here, so a worker on another machine is handed one as it is."""

from __future__ import annotations

from pathlib import Path


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def remote(url: str):
    """(fsspec filesystem, the path inside it) of a URL; fsspec keeps one filesystem per set of options."""
    import fsspec

    return fsspec.core.url_to_fs(url)


def canonical(location: str | Path) -> str:
    """A shards folder as DuckDB names the files in it (its sandbox compares names against this): a
    local folder as it is, a URL as its filesystem writes it back (s3://bucket/prefix)."""
    if not is_url(location):
        return str(Path(location))
    filesystem, path = remote(str(location))
    return filesystem.unstrip_protocol(path).rstrip("/")


def filesystem_of(location: str | Path):
    """The fsspec filesystem DuckDB reads a URL's shards through; None for a local folder."""
    return remote(str(location))[0] if is_url(location) else None


def joined(location: str | Path, name: str) -> str:
    """The path (or URL) of the file `name` inside a shards folder."""
    return f"{canonical(location)}/{name}"


def delete_files(paths: list[str]) -> None:
    """Delete shard files (paths or URLs); one already gone is no error."""
    for path in paths:
        if is_url(path):
            filesystem, inside = remote(path)
            if filesystem.exists(inside):
                filesystem.rm(inside)
        else:
            Path(path).unlink(missing_ok=True)


def files_in(location: str | Path, folder: str, suffix: str) -> list[str]:
    """The names (inside the shards folder) of the files in its sub-folder `folder` that end with `suffix`."""
    if is_url(location):
        filesystem, path = remote(joined(location, folder))
        filesystem.invalidate_cache(path)  # written by workers elsewhere since it was last listed
        found = filesystem.glob(f"{path}/*{suffix}")
    else:
        found = [str(file) for file in (Path(location) / folder).glob(f"*{suffix}")]
    return [f"{folder}/{Path(file).name}" for file in found]
