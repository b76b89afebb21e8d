"""Training orchestration, the same for every family (latentviz/fit/): a run stopped part way resumes
from its checkpoint and finishes, with no curve point written twice."""

import pytest
import specs

from latentviz import fit, jobs, runs, settings, train
from latentviz.errors import LatentvizError
from latentviz.store import Store, copy_workspace

STOP, EVERY = 20, 10  # a run is stopped at step 20; it evaluates and checkpoints every 10 steps
# How a run is stopped: Ctrl-C in the CLI, or the Stop a page asks the worker for (jobs.Stopped)
STOPPED_BY = {"vq": KeyboardInterrupt, "vae": jobs.Stopped, "sae": KeyboardInterrupt}
LOOP = {"eval_every": EVERY, "checkpoint_every": EVERY, "lr": 1e-3}


def small_run(kind: str, backbone: str, tiny_llama: str):
    """A short run of each family on the mapped workspace's 150 BBC sentences (135 of them train; 120 for a VAE,
    which keeps 15 for validation)."""
    if kind == "vq":
        return specs.vq(
            "bbc-news",
            backbone=backbone,
            model={"codebook_size": 8, "groups": 1},
            training={**LOOP, "steps": 40, "batch_size": 32},
        )
    if kind == "vae":  # 120 texts in batches of 16: 8 steps an epoch, 5 epochs
        return specs.vae(
            "bbc-news",
            model={"variant": "rnn", "latent_dim": 4, "hidden": 32},
            training={**LOOP, "batch_size": 16},
            epochs=5,
        )
    return specs.sae(
        "bbc-news",
        backbone=tiny_llama,
        layer=2,
        max_tokens=600,
        model={"d_sae": 32, "k": 4},
        training={**LOOP, "steps": 40, "batch_size": 64},
    )


@pytest.mark.parametrize("kind", list(runs.FAMILIES))
def test_a_stopped_run_resumes_from_its_checkpoint_and_finishes(kind, mapped_workspace, tiny_llama, tmp_path):
    db = tmp_path / "copy.duckdb"
    copy_workspace(mapped_workspace, db)
    store = Store(db)
    family = runs.FAMILIES[kind]
    run = small_run(kind, store.projections()["backbone"].iloc[0], tiny_llama)

    def stop(done, total, message):  # part way through the training loop
        if message.startswith("training") and done == STOP:
            raise STOPPED_BY[kind]

    with pytest.raises(STOPPED_BY[kind]):
        family.fit.train(store, run, progress=stop)
    model_id = int(store.models()["id"].max())
    assert store.model(model_id)["checkpoint"] is None
    assert train.checkpoint_step(settings.models_dir(store.path) / str(model_id)) == STOP
    assert model_id not in fit.common.models(store, kind)["id"].tolist()  # unfinished: not offered for browsing
    with pytest.raises(LatentvizError, match=f"no {kind.upper()} model with id"):
        family.fit.resume(store, model_id + 1)

    assert family.fit.resume(store, model_id) == model_id
    finished = store.model(model_id)
    assert finished["checkpoint"] is not None and finished["metrics"]
    steps = store.training_metrics(model_id).groupby("name")["step"].apply(list)
    total = runs.from_record(finished).training.steps
    expected = sorted({*range(EVERY, total + 1, EVERY), total})  # every EVERY steps and at the end
    for name, written in steps.items():  # every curve whole, no step written twice
        assert written == expected, name
    assert model_id in fit.common.models(store, kind)["id"].tolist()
    if kind == "vae":  # its checkpoint is chosen on validation texts; the held-out ones are only reported on
        assert set(store.training_metrics(model_id)["split"]) == {"validation"}
        assert finished["metrics"]["held_out"] == 15
    with pytest.raises(LatentvizError, match="nothing to resume"):
        family.fit.resume(store, model_id)


def test_validation_texts_are_apart_from_training_and_held_out_ones():
    train_rows, validation, held = fit.common.validation_split(150, 42)
    assert len(validation) == len(held) == 15 and len(train_rows) == 120
    assert set(train_rows) | set(validation) | set(held) == set(range(150))
    assert not (set(train_rows) & set(validation)) and not (set(validation) & set(held))
    assert held.tolist() == fit.common.split_ids(150, 42)[1].tolist()  # the held-out texts did not change
