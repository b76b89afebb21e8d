"""What the Streamlit pages share: this server's workspace, job progress and first-run bootstrap.
Kept small: pages draw, the pipeline computes."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from latentviz import jobs, latent_space, pipeline, settings
from latentviz.backbones import BackboneError
from latentviz.models.base import CheckpointError
from latentviz.store import Store, StoreError


@st.cache_resource
def _open(path: str, read_only: bool) -> Store:
    return Store(path, read_only=read_only)


def store() -> Store:
    """The workspace this server was started on (`latentviz serve --db ...`)."""
    return _open(str(settings.db_path().resolve()), os.environ.get("LATENTVIZ_READ_ONLY") == "1")


_bootstrapped: set[str] = set()


def bootstrap(workspace: Store) -> None:
    """On the first visit to an empty, writable workspace, start building the default map."""
    if workspace.read_only or os.environ.get("LATENTVIZ_BOOTSTRAP", "0") != "1" or str(workspace.path) in _bootstrapped:
        return
    _bootstrapped.add(str(workspace.path))  # once per server: a failure is shown, not retried in a loop
    if workspace.datasets().empty and workspace.jobs(limit=1).empty:
        start_default_map(workspace)


def start_default_map(workspace: Store) -> int:
    return jobs.start(workspace, "default map", {"dataset": settings.BUILTIN_DATASET},
                      lambda progress: pipeline.build_default_map(workspace, progress=progress))


def job_status(workspace: Store) -> None:
    """Progress bars while jobs run (polled); an error box if the latest job failed or was cut off."""
    if not jobs.running(workspace).empty:
        _poll_jobs(workspace)
        return
    latest = workspace.jobs(limit=1)
    if latest.empty:
        return
    job = latest.iloc[0]
    if job["status"] == "failed":
        st.error(f"{job['kind']} failed: {job['error']}", icon=":material/error:")
    elif job["status"] == "interrupted":
        why = job["error"] if pd.notna(job["error"]) else "interrupted before it finished; start it again to resume"
        st.warning(f"{job['kind']}: {why}", icon=":material/pause_circle:")


def resume_offers(workspace: Store, unfinished: pd.DataFrame, job_kind: str, resume, key: str) -> None:
    """For each run that stopped before it finished: where it stopped, and a Resume button that
    continues it in the background with `resume(workspace, model_id, progress=...)`."""
    for run in unfinished.itertuples():
        step = workspace.training_metrics(int(run.id))["step"].max()
        left, right = st.columns([4, 1])
        left.warning(f"Run #{run.id} ({run.name} on {run.dataset}) stopped before it finished"
                     + (f", after step {int(step)}." if pd.notna(step) else "."), icon=":material/pause_circle:")
        if right.button("Resume", key=f"{key}_{run.id}"):
            jobs.start(workspace, job_kind, {"model": int(run.id)},
                       lambda progress, model_id=int(run.id): resume(workspace, model_id, progress=progress))
            st.rerun()


@st.fragment(run_every=1.0)
def _poll_jobs(workspace: Store) -> None:
    running = jobs.running(workspace)
    if running.empty:
        st.rerun()  # the work is done: redraw the whole page with its results
    for job in running.itertuples():
        total = job.total if pd.notna(job.total) and job.total else None
        fraction = min(1.0, job.done / total) if total else 0.0
        count = f" — {job.done:,} / {int(total):,}" if total else ""
        st.progress(fraction, text=f"**{job.kind}**: {job.message or 'starting'}{count}")


# -- text VAE pages ---------------------------------------------------------------------------------

TRAIN_VAE_PAGE = "views/vae_train.py"


@st.cache_resource(max_entries=4, show_spinner="Loading the VAE…")
def _space(path: str, model_id: int) -> latent_space.LatentSpace:
    return latent_space.open_space(store(), model_id)


def pick_model(models: pd.DataFrame, label: str, key: str) -> int:
    """A select box over model rows (id, name, dataset), the choice kept in the URL as ?model=;
    the newest by default."""
    labels = {int(r.id): f"#{r.id} {r.name} · {r.dataset}" for r in models.itertuples()}
    query = st.query_params
    wanted = int(query["model"]) if query.get("model", "").isdigit() and int(query["model"]) in labels else max(labels)
    model_id = st.selectbox(label, list(labels), index=list(labels).index(wanted), format_func=labels.get, key=key)
    query["model"] = str(model_id)
    return model_id


def pick_vae(workspace: Store) -> latent_space.LatentSpace:
    """A select box of trained VAEs (the choice kept in the URL as ?model=); stops the page with a
    pointer to the Train page when there is none."""
    trained = latent_space.models(workspace)
    if trained.empty:
        st.info("**No VAE yet.** Train one on the Train page: about five minutes on a 2-core laptop CPU with the defaults.",
                icon=":material/model_training:")
        st.page_link(TRAIN_VAE_PAGE, label="Train a VAE", icon=":material/model_training:")
        st.stop()
    model_id = pick_model(trained, "VAE", "vae_model")
    try:
        return _space(str(workspace.path), model_id)
    except (StoreError, CheckpointError, BackboneError) as error:
        st.error(f"Cannot open VAE #{model_id}: {str(error).splitlines()[0]}", icon=":material/error:")
        st.stop()


def text_param(name: str, default: str, label: str, **kwargs) -> str:
    """A text box whose value lives in the URL (?name=...), so a link reproduces the view."""
    value = st.text_input(label, st.query_params.get(name, default), key=f"text_{name}", **kwargs).strip()
    st.query_params[name] = value
    return value
