"""Large arrays beside the catalog: captured LM activations, encodings' vectors and SAEs' sparse
feature activations live as Parquet shards in the workspace's `.arrays` folder, Hive-partitioned by
what owns them

    latentviz.arrays/captures/capture_id=2/part-00000-<random>.parquet
    latentviz.arrays/encodings/encoding_id=3/part-00000-<random>.parquet
    latentviz.arrays/feature_activations/model_id=7/part-00000-<random>.parquet

and the DuckDB file keeps only their catalog (`array_shards`: which files, how many rows), reading them
in place with `read_parquet`. The file stays small however many vectors it holds, and the shards are
plain Parquet that any engine reads or writes (a distributed encode writes the same layout).

The folder can instead be on object storage: a workspace created with $LATENTVIZ_ARRAYS set to a URL
(s3://bucket/prefix, gs://..., any filesystem fsspec knows, with that filesystem's own credentials)
keeps its shards there, and DuckDB reads them in place through the same fsspec filesystem, so a
cluster's workers need the URL, not a shared disk.

A shard is written under a temporary name, renamed, and only then registered, in the caller's
transaction: a crash leaves at most an unregistered file, which nothing reads (an object store shows
an object only once it is whole: there it is written under its own name). Removed shards are deleted
once the transaction that unregistered them commits.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from latentviz import settings
from latentviz.store.connection import Connection
from latentviz.store.locations import delete_files, is_url, joined, remote

# kind -> (the partition key, the columns a shard holds, how its rows are sorted: by feature, so
# a lookup of one feature reads only the row groups whose statistics can hold it)
KINDS = {
    "captures": ("capture_id", {"states": "FLOAT[]"}, None),  # in the order of the capture's token rows
    "encodings": ("encoding_id", {"text_id": "BIGINT", "vector": "FLOAT[]"}, "text_id"),
    "feature_activations": (
        "model_id",
        {"text_id": "BIGINT", "position": "INTEGER", "feature": "INTEGER", "value": "REAL"},
        "feature, text_id, position",
    ),
}
# Dense float lists (a capture's states, an encoding's vectors): byte-stream split and lz4 read back 12×
# faster than dictionary and zstd (80 against 959 ms for 6,551 SmolLM2 states) and stay 6% under raw
# float32; the sparse activations' ids compress well with the defaults (dictionary) and zstd.
WRITE_OPTIONS = {
    kind: {
        "compression": "lz4",
        "use_dictionary": False,
        "column_encoding": {f"{column}.list.element": "BYTE_STREAM_SPLIT"},
    }
    for kind, column in (("captures", "states"), ("encodings", "vector"))
} | {"feature_activations": {"compression": "zstd"}}
ROWS_PER_SHARD = 2_000_000
ROWS_PER_GROUP = 65_536


def owner_folder(kind: str, owner: int) -> str:
    """The folder of an owner's shards inside the arrays folder (Hive partitioning: its id is in the path)."""
    return f"{kind}/{KINDS[kind][0]}={owner}"


def shard_name(kind: str, owner: int, shard: int, tag: str | None = None) -> str:
    """A new shard's path inside the arrays folder. A random tail (or the writing run's `tag`) keeps a
    replacement's files apart from the ones it replaces until they are deleted."""
    return f"{owner_folder(kind, owner)}/part-{shard:05d}-{tag or uuid.uuid4().hex[:12]}.parquet"


def write_shard(location: str | Path, kind: str, owner: int, shard: int, rows: pa.Table, tag: str | None = None) -> str:
    """Write one shard file into the shards folder at `location` (a local folder: temporary name, then
    renamed); its name. Nothing reads it until it is registered (Arrays.register_shard): a worker on
    another machine writes its own shards into a shared folder or bucket this way, and the step
    registers them as their results arrive."""
    name = shard_name(kind, owner, shard, tag)
    options = {"row_group_size": ROWS_PER_GROUP, **WRITE_OPTIONS.get(kind, {})}
    if is_url(location):
        filesystem, path = remote(joined(location, name))
        pq.write_table(rows, path, filesystem=filesystem, **options)
        return name
    path = Path(location) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(path.name + ".partial")
    pq.write_table(rows, written, **options)
    os.replace(written, path)
    return name


def _empty(kind: str) -> str:
    """A relation with a shard's columns and no rows: what an owner without shards reads."""
    columns = ", ".join(f"NULL::{sql_type} AS {name}" for name, sql_type in KINDS[kind][1].items())
    return f"(SELECT {columns} WHERE false)"


def states_table(states: np.ndarray) -> pa.Table:
    """A capture shard's rows: one fixed-size list of float32 per token."""
    states = np.ascontiguousarray(states, dtype=np.float32)
    return pa.table({"states": pa.FixedSizeListArray.from_arrays(pa.array(states.ravel()), states.shape[1])})


def read_states(path: str | Path) -> np.ndarray:
    """A capture shard's (tokens, d) float32 matrix, from its path or URL."""
    if is_url(path):
        filesystem, inside = remote(str(path))
        table = pq.read_table(inside, columns=["states"], filesystem=filesystem)
    else:
        table = pq.read_table(path, columns=["states"])
    column = table.column("states").combine_chunks()
    states = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
    return np.require(states, requirements="W")  # Arrow's buffers are read-only; torch wants to own them


def move_tables_into_shards(con, store: Arrays) -> list[Path]:
    """Migration: the vectors and activations older workspaces kept inside the DuckDB file, and the
    captures they kept as safetensors files in their cache, written out as shards (the tables are
    dropped by the statements after this one). Returns the old capture files, deleted once this commits."""
    from safetensors.numpy import load_file

    for kind, table in (("encodings", "encoding_vectors"), ("feature_activations", "feature_activations")):
        key, columns, order = KINDS[kind]
        for (owner,) in con.execute(f"SELECT DISTINCT {key} FROM {table} ORDER BY {key}").fetchall():
            rows = con.sql(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ? ORDER BY {order}", params=[owner]
            ).to_arrow_table()
            store.add_shards(con, kind, owner, rows)
    moved = []
    for (capture_id,) in con.execute("SELECT DISTINCT capture_id FROM capture_shards ORDER BY 1").fetchall():
        files = con.execute(
            "SELECT shard, path FROM capture_shards WHERE capture_id = ? ORDER BY shard", [capture_id]
        ).fetchall()
        if not all(Path(path).is_file() for _, path in files):  # its cache was cleared: capture it again
            for table in ("capture_tokens", "capture_masked"):
                con.execute(f"DELETE FROM {table} WHERE capture_id = ?", [capture_id])
            con.execute("UPDATE captures SET complete = false WHERE id = ?", [capture_id])
            continue
        for shard, path in files:
            store.add_shards(con, "captures", capture_id, states_table(load_file(path)["states"]), shard=shard)
            moved.append(Path(path))
    return moved


class Arrays(Connection):
    """Writing, reading and removing a workspace's Parquet shards; every method takes the caller's
    connection, so a shard's registration commits (or not) with the rest of the caller's change."""

    _arrays_location: str | None = None  # read from the workspace by Connection._connect

    @property
    def arrays_location(self) -> str:
        """The shards folder: the workspace's `.arrays` folder beside its file, or the URL it was created with."""
        return self._arrays_location or str(settings.arrays_dir(self.path))

    def array_path(self, name: str) -> str:
        """The path (or URL) of a shard file, from its name in the catalog."""
        return joined(self.arrays_location, name)

    def add_shards(self, con, kind: str, owner: int, rows: pa.Table, shard: int | None = None) -> None:
        """Write `rows` (a shard's columns, sorted as KINDS says) as new shards of `owner`, numbered from
        `shard` (default: after its last)."""
        owner, start = int(owner), shard
        if start is None:
            start = con.execute(
                "SELECT coalesce(max(shard) + 1, 0) FROM array_shards WHERE kind = ? AND owner = ?", [kind, owner]
            ).fetchone()[0]
        for number, offset in enumerate(range(0, rows.num_rows, ROWS_PER_SHARD), start=start):
            part = rows.slice(offset, ROWS_PER_SHARD)
            self.register_shard(
                con, kind, owner, number, write_shard(self.arrays_location, kind, owner, number, part), part.num_rows
            )

    def register_shard(self, con, kind: str, owner: int, shard: int, name: str, rows: int) -> None:
        """Add a written shard file (its name inside the arrays folder) to the catalog."""
        con.execute("INSERT INTO array_shards VALUES (?, ?, ?, ?, ?)", [kind, int(owner), int(shard), name, int(rows)])

    def shard_relation(self, con, kind: str, owner: int) -> tuple[str, dict]:
        """(SQL relation, its parameters) reading every shard of `owner` in place."""
        owner = int(owner)
        names = [
            row[0]
            for row in con.execute(
                "SELECT path FROM array_shards WHERE kind = ? AND owner = ? ORDER BY shard", [kind, owner]
            ).fetchall()
        ]
        if not names:
            return _empty(kind), {}
        return "read_parquet($shards)", {"shards": [self.array_path(name) for name in names]}

    def drop_shards(self, con, kind: str, owners: list[int]) -> list[str]:
        """Unregister every shard of these owners; returns their files, for `deleting` after the commit."""
        owners = [int(owner) for owner in owners]
        names = con.execute(
            "SELECT path FROM array_shards WHERE kind = ? AND list_contains(?, owner)", [kind, owners]
        ).fetchall()
        con.execute("DELETE FROM array_shards WHERE kind = ? AND list_contains(?, owner)", [kind, owners])
        return [self.array_path(name) for (name,) in names]

    @contextmanager
    def deleting(self):
        """A list to put shard files (paths or URLs) in; they are deleted when the block ends without an
        error (after the transaction inside it has committed), and kept, still registered, when it fails."""
        doomed: list[str | Path] = []
        yield doomed
        delete_files([str(path) for path in doomed])

    def copy_shards_into(self, con, target: Path) -> None:
        """Copy the files of every shard the attached copy at `target` registers (Schema.copy_into)."""
        destination = settings.arrays_dir(target)  # the copy's own folder, wherever this workspace's shards are
        for (name,) in con.execute("SELECT path FROM array_shards").fetchall():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            if is_url(self.arrays_location):
                filesystem, path = remote(self.array_path(name))
                filesystem.get(path, str(destination / name))
            else:
                shutil.copyfile(self.array_path(name), destination / name)
