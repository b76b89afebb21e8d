"""What the Streamlit pages share: this server's workspace, job progress and first-run bootstrap.
Kept small: pages draw, the pipeline computes."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable

import pandas as pd
import streamlit as st

from latentviz import (
    charts,
    estimates,
    features,
    fit,
    job_watch,
    jobs,
    latent_space,
    map_widget,
    numbers,
    pipeline,
    runs,
    settings,
    steps,
)
from latentviz.errors import LatentvizError
from latentviz.neighbours import CosineIndex
from latentviz.store import Store

_page_runs_lock = threading.Lock()
_pages_running, _last_page_run_end = 0, time.monotonic()


@contextlib.contextmanager
def page_run():
    """Wraps every page run (app.py): the server's warm-up holds its later work (a map's vectors, the
    torch imports) until no page has run for a moment (server.py)."""
    global _pages_running, _last_page_run_end
    with _page_runs_lock:
        _pages_running += 1
    try:
        yield
    finally:
        with _page_runs_lock:
            _pages_running -= 1
            _last_page_run_end = time.monotonic()


def seconds_since_a_page_ran() -> float:
    """0 while a page runs; else the time since the last run ended (or since this module was imported)."""
    with _page_runs_lock:
        return 0.0 if _pages_running else time.monotonic() - _last_page_run_end


@st.cache_resource
def favicon():
    """The tab icon, drawn here: a Material icon name would make every page load it from Google's
    font host, and the app makes no request beyond its own server."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (64, 64))
    draw = ImageDraw.Draw(icon)
    for radius, alpha in ((30, 70), (22, 140), (13, 255)):  # a blurred dot: latent points
        draw.ellipse((32 - radius, 32 - radius, 32 + radius, 32 + radius), fill=(230, 70, 80, alpha))
    return icon


@st.cache_resource
def _open(path: str, read_only: bool, bundle: bool) -> Store:
    return Store(path, read_only=read_only, hold_open=bundle)  # nothing writes a bundle: held open


def store() -> Store:
    """The workspace this server was started on (`latentviz serve --db ...` or `--bundle`)."""
    bundle = os.environ.get(settings.BUNDLE_ENV) == "1"
    return _open(str(settings.db_path().resolve()), bundle or os.environ.get("LATENTVIZ_READ_ONLY") == "1", bundle)


def allowed_host(host: str) -> bool:
    """Whether a writable app answers a page asked for by this Host header: loopback, or a name in
    `serve --allow-host`. A site that rebinds its own name to 127.0.0.1 (DNS rebinding) reaches a
    loopback server with that name as its Host, and could otherwise queue jobs or delete datasets.
    No Host at all is no browser (AppTest, a script)."""
    if not host:
        return True
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    allowed = {n.strip().lower() for n in os.environ.get(settings.ALLOWED_HOSTS_ENV, "").split(",") if n.strip()}
    return name.lower() in {*settings.LOOPBACK, *allowed}


def request_host() -> str:
    return st.context.headers.get("Host", "")


def guard_host(workspace: Store) -> None:
    """Stop the page unless a writable workspace was asked for by a name it answers to."""
    if workspace.read_only or allowed_host(request_host()):
        return
    st.error(
        f"This workspace is writable and answers only at 127.0.0.1 or localhost, not at {request_host()!r}: "
        "open it there, or start it with `latentviz serve --allow-host NAME`.",
        icon=":material/block:",
    )
    st.stop()


_bootstrapped: set[str] = set()


def bootstrap(workspace: Store) -> None:
    """On the first visit to an empty, writable workspace, start building the default map."""
    if workspace.read_only or os.environ.get("LATENTVIZ_BOOTSTRAP", "0") != "1" or str(workspace.path) in _bootstrapped:
        return
    _bootstrapped.add(str(workspace.path))  # once per server: a failure is shown, not retried in a loop
    if workspace.datasets().empty and workspace.jobs(limit=1).empty:
        start_default_map(workspace)


def start_default_map(workspace: Store) -> int:
    return jobs.submit(workspace, "default map", {"dataset": settings.BUILTIN_DATASET})


def job_status(workspace: Store) -> None:
    """The queue while jobs wait or run (its bars updated in the browser: job_watch); a line for each
    job that ended since this page last looked; an error box if the latest job failed or was cut off."""
    cancel = job_watch.queue_events("job_queue").cancel  # read before drawing
    if cancel is not None and not workspace.read_only:
        jobs.cancel(workspace, cancel)
    active = jobs.active(workspace)
    seen = st.session_state.get("_jobs_seen", set())
    st.session_state["_jobs_seen"] = set(active["id"])
    for job_id in sorted(seen - set(active["id"])):
        job = workspace.job(job_id)
        if job is not None and job["status"] == "done":
            st.success(f"**{job['kind']}** is done.", icon=":material/check_circle:")
    if not active.empty:
        job_watch.queue(workspace, active, can_cancel=not workspace.read_only, key="job_queue")
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


# -- training runs, the same panel for every family ---------------------------------------------------


def training_panel(workspace: Store, kind: str) -> bool:
    """While a run of this family trains: its live held-out curves and Stop (the page redraws when
    it ends). Otherwise each run that stopped before it finished, with Resume. Returns whether a
    run is queued or training now, so the page shows no second form."""
    mine = jobs.active(workspace)
    mine = mine[mine["kind"].isin(runs.FAMILIES[kind].jobs)]
    if (mine["status"] == "running").any():
        _live_training(workspace, kind)
        return True
    if not mine.empty:
        st.info(
            "**A run of this kind is queued.** It starts when the jobs ahead of it end.", icon=":material/schedule:"
        )
        return True
    if not workspace.read_only:
        _resume_offers(workspace, kind)
    return False


@st.fragment
def _live_training(workspace: Store, kind: str) -> None:
    """A live run's curves and Stop; the curves are redrawn in the browser as the run records them
    (job_watch.curves), and this fragment reruns only when another run goes live."""
    family = runs.FAMILIES[kind]
    running = jobs.running(workspace)
    running = running[running["kind"].isin(family.jobs)]
    if running.empty:
        st.rerun()  # the run ended: redraw the whole page with its results
    unfinished = fit.common.models(workspace, kind, finished=False)
    model_id = int(unfinished["id"].max()) if not unfinished.empty else None
    st.subheader(f"Training run #{model_id} (live)" if model_id else "Preparing the training data")
    # on the left, under the title, with nothing over it
    if st.button(
        "Stop", icon=":material/stop_circle:", key=f"{kind}_stop", help="stops after the current step; resume it later"
    ):
        jobs.cancel(workspace, int(running["id"].iloc[0]))
    every = f" (every {fit.common.run_of(workspace, model_id, kind)[1].training.eval_every} steps)" if model_id else ""
    job_watch.curves(
        workspace,
        kind,
        model_id,
        family.fit.curves(workspace, model_id) if model_id else pd.DataFrame(columns=["step", "metric", "value"]),
        empty=f"No curves yet: they appear after the first held-out evaluation{every}; the progress above says "
        "what is being done.",
        key=f"{kind}_live_curves",
    )


def _draw_curves(curves: pd.DataFrame, model_id: int) -> None:
    """A run's held-out curves, one panel per metric (up to 4 a row)."""
    st.vega_lite_chart(_curves_spec(curves.assign(model=f"#{model_id}"), min(4, curves["metric"].nunique())))


@st.cache_data(max_entries=32, show_spinner=False)
def _curves_spec(curves: pd.DataFrame, columns: int) -> dict:
    """The live chart's Vega-Lite spec, built (and validated by Altair) once per set of points, not at
    every look: the same spec again is not redrawn by the browser either."""
    return charts.curves_chart(curves, columns=columns).to_dict()


def _resume_offers(workspace: Store, kind: str) -> None:
    from latentviz.train import checkpoint_step

    family = runs.FAMILIES[kind]
    for run in fit.common.models(workspace, kind, finished=False).itertuples():
        step = checkpoint_step(settings.models_dir(workspace.path) / str(run.id))  # where a resume starts
        left, right = st.columns([4, 1])
        left.warning(
            f"Run #{run.id} ({run.name} on {run.dataset}) stopped before it finished"
            + (f", after step {step}." if step else ", before its first checkpoint."),
            icon=":material/pause_circle:",
        )
        if right.button("Resume", key=f"{kind}_resume_{run.id}"):
            jobs.submit(workspace, family.resume_job, {"model": int(run.id)})
            st.rerun()
        curves = family.fit.curves(workspace, int(run.id))
        if not curves.empty:  # what it learnt before it stopped stays in view
            with st.expander(f"Run #{run.id}'s held-out curves so far", expanded=True):
                _draw_curves(curves, int(run.id))


def start_training(workspace: Store, run) -> None:
    """Queue a run (the worker trains it; an SAE's dashboards are built after), then redraw."""
    jobs.submit(workspace, runs.FAMILIES[run.kind].train_job, jobs.training_params(run))
    st.rerun()


# -- state in the URL, and selections ------------------------------------------------------------------


def from_url(name: str, default, options=None, cast=str):
    """The value of ?name= when it parses with `cast` and is among `options` (when given); else `default`."""
    raw = st.query_params.get(name)
    try:
        value = cast(raw) if raw is not None else default
    except ValueError:
        return default
    return value if options is None or value in options else default


def url_radio(where, label: str, choices: dict, param: str, default: str, key: str, **kwargs) -> str:
    """A horizontal radio over `choices` (value: the words shown), kept in the URL as ?param=value."""
    value = where.radio(
        label,
        list(choices),
        index=list(choices).index(from_url(param, default, choices)),
        format_func=choices.get,
        horizontal=True,
        key=key,
        **kwargs,
    )
    st.query_params[param] = value
    return value


def new_pick(key: str, picked: list):
    """The first of a table's or chart's selected items when the selection changed since the last
    run, else None: a selection stays set after the click that made it, so each click counts once."""
    last = st.session_state.get(key)
    st.session_state[key] = picked
    return picked[0] if picked and picked != last else None


# -- text VAE pages ---------------------------------------------------------------------------------

TRAIN_VAE_PAGE = "views/vae_train.py"
# The deterministic decodings a VAE page offers, the default first (so a select box opens on it)
DECODINGS = sorted(("beam", "greedy"), key=lambda method: method != steps.DECODING.method)


@st.cache_resource(max_entries=4, show_spinner="Loading the VAE…")
def _space(path: str, model_id: int) -> latent_space.LatentSpace:
    return latent_space.open_space(store(), model_id)


def pick_model(models: pd.DataFrame, label: str, key: str) -> int:
    """A select box over model rows (id, name, dataset), the choice kept in the URL as ?model=;
    the newest by default."""
    labels = {int(r.id): f"#{r.id} {r.name} · {r.dataset}" for r in models.itertuples()}
    wanted = from_url("model", max(labels), labels, int)
    model_id = st.selectbox(label, list(labels), index=list(labels).index(wanted), format_func=labels.get, key=key)
    st.query_params["model"] = str(model_id)
    return model_id


def pick_vae(workspace: Store) -> latent_space.LatentSpace:
    """A select box of trained VAEs (the choice kept in the URL as ?model=); stops the page with a
    pointer to the Train page when there is none."""
    trained = fit.common.models(workspace, "vae")
    if trained.empty:
        if jobs.active(workspace)["kind"].isin(runs.FAMILIES["vae"].jobs).any():  # queued or training
            st.info("**A VAE is on its way.** This page opens it when it is done.", icon=":material/hourglass_top:")
            training_panel(workspace, "vae")  # its live curves (or its place in the queue), here too
            st.stop()
        st.info(
            f"**No VAE yet.** Train one on the Train page: {estimates.about(estimates.VAE_S)} on a 2-core laptop CPU "
            "with the defaults.",
            icon=":material/model_training:",
        )
        st.page_link(TRAIN_VAE_PAGE, label="Train a VAE", icon=":material/model_training:")
        st.stop()
    model_id = pick_model(trained, "VAE", "vae_model")
    try:
        return _space(str(workspace.path), model_id)
    except LatentvizError as error:
        st.error(f"Cannot open VAE #{model_id}: {str(error).splitlines()[0]}", icon=":material/error:")
        st.stop()


# -- SAE pages --------------------------------------------------------------------------------------

SAE_TRAIN_PAGE, SAE_FEATURES_PAGE, SAE_TEXT_PAGE = "views/sae_train.py", "views/sae_features.py", "views/sae_text.py"
SAE_EVALUATE_PAGE, SAE_COMPARE_PAGE = "views/sae_evaluate.py", "views/sae_compare.py"
SAE_FEATURES_URL = "sae-features"  # the Features page's url_path (app.py): where a feature id links to


def pick_sae(workspace: Store) -> tuple[int, dict]:
    """A select box of trained SAEs (the choice kept in the URL as ?model=): (model id, its row); stops
    the page with a pointer to the Train page when there is none."""
    trained = fit.common.models(workspace, "sae")
    if trained.empty:
        training = jobs.running(workspace)["kind"].isin(runs.FAMILIES["sae"].jobs).any()
        st.info(
            "**An SAE is training.** Its features appear here when it is done."
            if training
            else f"**No SAE yet.** Train one on the Train page: {estimates.about(estimates.SAE_S)} on 2 CPU cores "
            "with the quick defaults.",
            icon=":material/hourglass_top:" if training else ":material/hub:",
        )
        st.page_link(SAE_TRAIN_PAGE, label="Train an SAE", icon=":material/model_training:")
        st.stop()
    model_id = pick_model(trained, "SAE", "sae_model")
    return model_id, workspace.model(model_id)


def sae_figures(figures: dict) -> None:
    """An SAE's held-out figures in a row of metrics (nothing for an imported SAE, which has none)."""
    if "l0" not in figures:
        return
    if "warning" in figures:
        st.warning(f"**This run's curves say:** {figures['warning']}.", icon=":material/trending_up:")
    a, b, c, d, e = st.columns(5)
    a.metric("L0", numbers.figure(figures["l0"]), help="mean active latents per held-out token")
    b.metric(
        "Explained variance", numbers.share(figures["explained_variance"]), help="1 − FVU, FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖²"
    )
    c.metric("Cosine", numbers.figure(figures["cosine"]), help="mean cos(x, x̂) over held-out tokens")
    d.metric(
        "Dead latents",
        numbers.count(figures["dead_latents"]),
        help=f"never fired over {numbers.count(figures['dead_window_tokens'])} held-out tokens",
    )
    e.metric(
        "CE loss recovered",
        numbers.share(figures["ce_loss_recovered"]),
        help="(CE_zero − CE_sae) / (CE_zero − CE_clean); Δ LM loss "
        f"{numbers.figure(figures['delta_lm_loss'])} nats/token",
    )


# -- the map's points: read and published once per map, for every session ---------------------------


@st.cache_resource(max_entries=8, show_spinner="Loading the map…")
def _map_points(_workspace: Store, db: str, projection_id: int) -> pd.DataFrame:
    return _workspace.projection_points(projection_id)


def map_points(workspace: Store, projection_id: int) -> pd.DataFrame:
    """A map's points (id, x, y, text, label): one frame shared by every session (cache_data would hand
    each run its own copy: 100 MB at a million points), never changed in place. A map never changes."""
    return _map_points(workspace, str(workspace.path), projection_id)


@st.cache_resource(max_entries=2, show_spinner="Loading the vectors, to find neighbours…")
def _neighbour_index(_workspace: Store, db: str, encoding_id: int) -> CosineIndex:
    return CosineIndex.of_encoding(_workspace, encoding_id)


def neighbour_index(workspace: Store, encoding_id: int) -> CosineIndex:
    """A map's vectors in memory for its clicks' neighbours, shared by every session. A finished
    encoding never changes."""
    return _neighbour_index(workspace, str(workspace.path), encoding_id)


def colour_column(color_by: str) -> str | None:
    """The column of the map's points a "Colour by" choice colours them by (a clustering's or a code's
    goes in "cluster")."""
    return {"label": "label", "none": None}.get(color_by, "cluster")


@st.cache_data(max_entries=16, show_spinner="Preparing the map's points…")
def _published_map(_workspace: Store, db: str, projection_id: int, color_by: str, k: int, _points: pd.DataFrame) -> str:
    return map_widget.publish(
        f"{db}:{projection_id}:{color_by}:{k}",
        _points,
        colour_column(color_by),
        f"{db}:{projection_id}",
        labels=pipeline.area_names(_workspace, projection_id, _points),
        density_json=charts.map_density(_points).to_json(),
    )


def published_map(workspace: Store, projection_id: int, points: pd.DataFrame, color_by: str, k: int = 0) -> str:
    """The map's points as its browser side fetches them (map_widget.publish), coloured by `color_by`
    (k clusters for k-means), published once per map and colouring and shared by every session
    (twenty visitors used to build and send the same figure twenty times)."""
    publication = (workspace, str(workspace.path), projection_id, color_by, k, points)
    path = _published_map(*publication)
    if not map_widget.is_published(path):  # cleared meanwhile by another server
        _published_map.clear()
        path = _published_map(*publication)
    return path


def newest_map(maps: pd.DataFrame) -> int:
    """The map the map page opens on (its first visit, and serve's warm-up): the newest."""
    return int(maps["id"].max())


def map_colourings(points: pd.DataFrame, code_models: Iterable[str] = ()) -> list[str]:
    """What a map can be coloured by, the first being what it opens with: its labels where it has any."""
    labelled = ["label"] if points["label"].notna().any() else []
    return [*labelled, *(f"{method} cluster" for method in steps.CLUSTERINGS), *code_models, "none"]


def prepare_newest_map() -> int | None:
    """The map page's first view made ready as the server starts (`serve`'s warm-up), so its first
    visitor only reads it: the map it opens on, read and published in its opening colours where those
    are labels (clusters are worked out on the page). Returns the map's encoding (whose vectors its
    clicks need), None where there is no map."""
    workspace = store()
    maps = workspace.projections()
    if maps.empty:
        return None
    projection_id = newest_map(maps)
    points = map_points(workspace, projection_id)
    opening = map_colourings(points)[0]
    if opening == "label":
        published_map(workspace, projection_id, points, opening)
    return int(maps.set_index("id").loc[projection_id, "encoding_id"])


@st.cache_resource(max_entries=4, show_spinner="Reading the feature dashboards…")
def _statistics(_workspace: Store, db: str, model_id: int, scored: str) -> pd.DataFrame:
    # fixed once built (the same SAE on the same tokens) until its labels are scored again (`scored`);
    # one frame shared by every session, never changed in place (cache_data would copy it for each run:
    # 26 ms for 4,608 features' histograms)
    return features.statistics(_workspace, model_id)


@st.cache_resource(max_entries=256, show_spinner=False)
def _dashboard(_workspace: Store, db: str, model_id: int, capture_id: int, feature: int) -> features.Dashboard:
    return features.dashboard(_workspace, model_id, capture_id, feature)


def feature_dashboard(workspace: Store, model_id: int, capture_id: int, feature: int) -> features.Dashboard:
    """One feature's dashboard, read once per server for every session (the opening feature is what most
    visitors see first); fixed once built, as the statistics are, and never changed in place."""
    return _dashboard(workspace, str(workspace.path), model_id, capture_id, feature)


def sae_statistics(workspace: Store, model_id: int) -> pd.DataFrame:
    """Every feature's statistics and label; where the dashboards are not built yet, says so, offers
    to build them and stops the page."""
    if workspace.has_feature_dashboards(model_id):
        evaluated = workspace.evaluations(model_id).set_index("name")
        scored = str(evaluated.loc["labels", "created"]) if "labels" in evaluated.index else ""
        return _statistics(workspace, str(workspace.path), model_id, scored)
    st.info(
        "**No feature dashboards for this SAE yet.** Building them encodes its captured tokens and works out every "
        "feature's examples, histogram, logit effects, neighbours and co-occurring features at once.",
        icon=":material/bar_chart:",
    )
    if not workspace.read_only and st.button("Build the feature dashboards", type="primary", key="sae_build"):
        jobs.submit(workspace, "features", {"model": model_id})
        st.rerun()
    st.stop()


def text_param(name: str, default: str, label: str, **kwargs) -> str:
    """A text box whose value lives in the URL (?name=...), so a link reproduces the view."""
    value = st.text_input(label, st.query_params.get(name, default), key=f"text_{name}", **kwargs).strip()
    remember_text(name, value)
    return value


def remember_text(name: str, value: str) -> None:
    """Typed text into the URL, so a link reproduces the view; or, where the server keeps text out of
    URLs (serve --no-text-in-url, and bundles by default), only a link's own text, until it is changed."""
    if os.environ.get(settings.TEXT_IN_URL_ENV, "1") != "0":
        st.query_params[name] = value
    elif st.query_params.get(name) not in (None, value):
        del st.query_params[name]
