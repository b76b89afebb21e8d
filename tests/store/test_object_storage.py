"""A workspace whose Parquet shards live on object storage: a real S3 API (moto's server on loopback,
through s3fs, as a cluster's workers would reach a bucket), read in place by DuckDB."""

import sys

import numpy as np
import pytest
from serving import free_port, launch

from latentviz import activations, settings
from latentviz.store import Store, StoreError

from . import texts

BUCKET = "latentviz-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on loopback with one bucket; the AWS variables point every client at it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = launch([sys.executable, "-m", "moto.server", "-p", str(port)], url, 60, health="/")
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
    }.items():
        patch.setenv(name, value)
    import s3fs  # requirements-dev.txt, with moto

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir(BUCKET)
    yield s3fs.S3FileSystem()
    patch.undo()
    server.terminate()
    server.wait(10)


def test_shards_are_written_to_the_bucket_and_read_in_place(s3, tmp_path):
    store = Store(tmp_path / "ws.duckdb", arrays=f"s3://{BUCKET}/one")
    assert store.arrays_location == f"s3://{BUCKET}/one"
    store.add_dataset("d", "test", texts("a a a a", "b b b b", "c c c c"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 2, 3)
    store.add_vectors(encoding_id, ids, np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32))
    files = s3.find(f"{BUCKET}/one")
    assert len(files) == 1 and f"encodings/encoding_id={encoding_id}/part-" in files[0]
    assert not settings.arrays_dir(store.path).exists()  # nothing beside the file
    again = Store(store.path, read_only=True)  # another process: the workspace says where its shards are
    got, vectors = again.vectors(encoding_id)
    assert got.tolist() == ids.tolist() and vectors.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with again._connect() as con, pytest.raises(Exception, match="disabled by configuration"):
        con.execute("SELECT * FROM read_csv('/etc/hostname')")  # still only its own shards

    store.delete_dataset("d")  # the objects go with what owned them
    assert s3.find(f"{BUCKET}/one") == []


def test_a_bundle_of_a_bucket_workspace_carries_its_shards_locally(s3, tmp_path):
    store = Store(tmp_path / "ws.duckdb", arrays=f"s3://{BUCKET}/two")
    store.add_dataset("d", "test", texts("a a a a", "b b b b"))
    ids = store.texts("d")["id"].to_numpy()
    encoding_id = store.encoding_id("d", "tiny", 2, 2)
    store.add_vectors(encoding_id, ids, np.array([[1, 2], [3, 4]], np.float32))
    store.copy_into(tmp_path / "copy.duckdb", ["d"], [], "models")
    copy = Store(tmp_path / "copy.duckdb", read_only=True)
    assert copy.arrays_location == str(settings.arrays_dir(copy.path))
    assert copy.vectors(encoding_id)[1].tolist() == [[1, 2], [3, 4]]


def test_a_capture_on_the_bucket_is_cut_at_its_budget_and_leaves_no_stray_object(s3, tmp_path, tiny_llama):
    store = Store(tmp_path / "ws.duckdb", arrays=f"s3://{BUCKET}/three")
    store.add_dataset("d", "test", texts(*[f"sentence number {i} of the capture" for i in range(40)]))
    capture_id = activations.capture(store, "d", tiny_llama, layer=1, max_tokens=50)
    text_ids, states = activations.load(store, capture_id)
    assert len(text_ids) == len(states) == 50  # the last shard rewritten on the bucket, cut at 50 tokens
    registered = sorted(path.split("/")[-1] for path in store.shards(capture_id)["path"])
    assert sorted(name.split("/")[-1] for name in s3.find(f"{BUCKET}/three")) == registered


def test_where_the_shards_live_is_chosen_once(s3, tmp_path):
    local = Store(tmp_path / "local.duckdb")
    local.add_dataset("d", "test", texts("a a a a", "b b b b"))
    local.add_vectors(local.encoding_id("d", "tiny", 2, 2), local.texts("d")["id"].to_numpy(), np.ones((2, 2)))
    with pytest.raises(StoreError, match="keeps its arrays at .*they do not move"):
        Store(local.path, arrays=f"s3://{BUCKET}/four")
    Store(tmp_path / "remote.duckdb", arrays=f"s3://{BUCKET}/four")
    with pytest.raises(StoreError, match="keeps its arrays at s3://latentviz-test/four, not s3://latentviz-test/five"):
        Store(tmp_path / "remote.duckdb", arrays=f"s3://{BUCKET}/five")
    with pytest.raises(StoreError, match="takes a URL"):
        Store(tmp_path / "other.duckdb", arrays="/some/folder")
