"""`--engine ray`: encode, capture and an SAE's feature activations on a local 2-CPU Ray cluster store
what the local engine stores, to float tolerance (a Ray worker runs torch on one thread)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from latentviz import activations, engines, features, pipeline
from latentviz.cli import main
from latentviz.errors import LatentvizError
from latentviz.steps import Engine
from latentviz.store import Store, copy_workspace

RAY = Engine(engine="ray")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module (starting one takes seconds); each step joins it."""
    import ray

    engines.start_cluster(cpus=2)
    yield
    ray.shutdown()


def copies(source, tmp_path, *names) -> list[Store]:
    stores = []
    for name in names:
        db = tmp_path / name / "workspace.duckdb"
        db.parent.mkdir()
        copy_workspace(source, db)
        stores.append(Store(db))
    return stores


def test_encode_on_ray_stores_what_the_local_engine_stores(cluster, mapped_workspace, tmp_path, tiny_bert, monkeypatch):
    monkeypatch.setattr(pipeline, "ENCODE_CHUNK", 40)  # 150 texts: four chunks, spread over two workers
    local, ray = copies(mapped_workspace, tmp_path, "local", "ray")
    for store, engine in ((local, Engine()), (ray, RAY)):
        store.add_dataset("again", "test", store.texts("bbc-news")[["text", "label"]])
        seen = []
        pipeline.encode(
            store, "again", backbone_name=tiny_bert, engine=engine, progress=lambda d, t, m, seen=seen: seen.append(d)
        )
        assert seen[-1] == 150
    (local_ids, local_vectors), (ray_ids, ray_vectors) = (
        s.vectors(int(s.encodings("again")["id"].iloc[0])) for s in (local, ray)
    )
    assert np.array_equal(local_ids, ray_ids) and local_vectors.shape == (150, 32)
    np.testing.assert_allclose(ray_vectors, local_vectors, rtol=1e-5, atol=1e-6)
    assert (
        ray.encodings("again")["complete"].all()
        and len(list(Path(ray.arrays_location).glob("encodings/*/*.parquet"))) > 4
    )


def test_capture_and_feature_activations_on_ray_store_what_the_local_engine_stores(
    cluster, trained_workspace, tmp_path, tiny_llama, monkeypatch
):
    monkeypatch.setattr(activations, "TEXTS_PER_SHARD", 50)  # three shards
    local, ray = copies(trained_workspace, tmp_path, "local", "ray")
    captured = [
        activations.capture(store, "bbc-news", tiny_llama, 3, max_tokens=100_000, engine=engine)
        for store, engine in ((local, Engine()), (ray, RAY))
    ]
    assert captured[0] == captured[1] and len(local.shards(captured[0])) == 3
    assert local.capture_tokens(captured[0]).equals(ray.capture_tokens(captured[1]))
    np.testing.assert_allclose(
        activations.load(ray, captured[1])[1], activations.load(local, captured[0])[1], rtol=1e-5, atol=1e-5
    )

    # a capture cut short: the last shard's file is cut at max_tokens, and the shards the workers wrote
    # beyond it are deleted, never registered
    short = activations.capture(ray, "bbc-news", tiny_llama, 3, max_tokens=120, engine=RAY)
    files = {path.name for path in (Path(ray.arrays_location) / "captures" / f"capture_id={short}").iterdir()}
    assert files == {Path(path).name for path in ray.shards(short)["path"]} and len(files) == 1
    np.testing.assert_array_equal(activations.load(ray, short)[1], activations.load(ray, captured[1])[1][:120])

    sae = int(local.models().set_index("kind").loc["sae", "id"])
    for store, engine in ((local, Engine()), (ray, RAY)):
        features.build(store, sae, engine=engine)
    assert ray.feature_texts(sae).equals(local.feature_texts(sae))
    np.testing.assert_allclose(ray.feature_stats(sae, 1)["max"], local.feature_stats(sae, 1)["max"], rtol=1e-5)


def test_the_cli_takes_the_engine_and_without_ray_says_how_to_get_it(trained_copy, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    sae = int(trained_copy.models().set_index("kind").loc["sae", "id"])
    assert main(["features", str(sae), "--db", str(trained_copy.path), "--engine", "ray"]) == 2
    assert "pip install 'latentviz[ray]'" in capsys.readouterr().err
    with pytest.raises(LatentvizError, match="no engine named"):
        list(engines.run(dict, (), [{}], engine=Engine(engine="spark")))


def test_a_worker_on_ray_runs_the_apps_jobs_there_and_cancel_stops_them(cluster, trained_copy, monkeypatch):
    from latentviz import jobs

    monkeypatch.setattr(engines, "_default", RAY)  # what `latentviz worker --engine ray` sets
    on_ray = []
    monkeypatch.setattr(engines, "_on_ray", lambda *args, real=engines._on_ray: on_ray.append(1) or real(*args))
    store = trained_copy
    sae = int(store.models().set_index("kind").loc["sae", "id"])
    before = store.feature_texts(sae)
    assert jobs.wait(store, jobs.submit(store, "features", {"model": sae}))["status"] == "done" and on_ray
    assert store.feature_texts(sae).equals(before)  # the same activations, rebuilt on the cluster

    monkeypatch.setattr(Store, "cancel_asked", lambda self, job_id: True)  # Cancel pressed while it runs
    job = jobs.wait(store, jobs.submit(store, "features", {"model": sae}))
    assert job["status"] == "interrupted" and store.feature_texts(sae).equals(before)
