"""`latentviz export --static DIR`: the workspace as plain files any static host serves (GitHub
Pages, a static Space, a bucket), with no Python behind them.

    DIR/index.html, site.js   the viewer (static_site.html and static_site.js in this package), and
                              point_map.js, the app's map renderer
    DIR/plotly.min.js         from plotly's Python package, for the other charts: nothing is fetched at view time
    DIR/data/index.json       what the site holds
    DIR/data/map-<id>.json    a map's points: x, y, text, label, their colourings, area names, density
    DIR/data/sae-<id>.json    an SAE's feature list; data/sae-<id>/<feature>.json each dashboard
    DIR/data/vq-<id>.json     a VQ model's code usage, sorted, with its Lorenz curve and Gini
    DIR/data/vae-<id>.json    a text VAE's prior samples, a traversal and an interpolation, decoded

The viewer puts every text on the page as DOM text (never as HTML). Its Content-Security-Policy allows
the site's own files only. Written under DIR.partial and renamed when complete; over the size
limit, nothing is left and the error says the size.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from latentviz import bundle, charts, codebook, features, latent_space, pipeline, settings
from latentviz.constants import PLOTLY_FILE, POINT_MAP_FILE, SITE_INDEX
from latentviz.errors import LatentvizError
from latentviz.store import Store


def export(
    store: Store,
    out: Path,
    *,
    datasets: list[str] | None = None,
    model_ids: list[int] | None = None,
    max_mb: float = settings.STATIC_MAX_MB,
) -> dict[str, int]:
    """Write the static site `out` (which must not exist yet); returns bytes per part and in total."""
    datasets, chosen = bundle.choose(store, datasets, model_ids)
    with bundle.building(Path(out)) as staging:
        package = resources.files("latentviz")
        (staging / SITE_INDEX).write_bytes(package.joinpath("static_site.html").read_bytes())
        (staging / "site.js").write_bytes(package.joinpath("static_site.js").read_bytes())
        (staging / POINT_MAP_FILE).write_bytes(package.joinpath(POINT_MAP_FILE).read_bytes())
        shutil.copyfile(charts.PLOTLY_JS, staging / PLOTLY_FILE)
        write = _Writer(staging / "data", max_mb, bundle.sizes(staging)["total"])
        index = {"maps": [], "saes": [], "codebooks": [], "vaes": []}
        for row in store.projections().itertuples():
            if row.dataset in datasets:
                write(f"map-{row.id}.json", _map(store, int(row.id)))
                title = f"{row.dataset} · {row.backbone} layer {row.layer} · {row.method.upper()} (#{row.id})"
                index["maps"].append({"id": int(row.id), "title": title})
        for row in chosen.itertuples():
            if row.kind == "sae":
                _sae(store, int(row.id), write)
                index["saes"].append({"id": int(row.id), "title": f"{row.name} (#{row.id})"})
            elif row.kind == "vq":
                write(f"vq-{row.id}.json", _codebook(store, int(row.id)))
                index["codebooks"].append({"id": int(row.id), "title": f"{row.name} (#{row.id})"})
            elif row.kind == "vae":
                write(f"vae-{row.id}.json", _vae(store, int(row.id)))
                index["vaes"].append({"id": int(row.id), "title": f"{row.name} (#{row.id})"})
        write("index.json", index)
        sizes = bundle.sizes(staging, grouped={"data": 2})
    return sizes


def _map(store: Store, projection_id: int) -> dict:
    points = store.projection_points(projection_id)
    colourings = {}  # the traces as the app draws them, and the points' order for each
    for colouring, column in (("label", "label"), ("none", None)):
        traces, order = charts.map_colouring(points, column)
        colourings[colouring] = {"traces": traces, "order": order.tolist()}
    density = json.loads(charts.map_density(points).to_json())
    density["z"] = [[float(f"{v:.4g}") for v in row] for row in density["z"]]  # 4 digits: a third of the bytes
    return {
        "x": np.round(points["x"].to_numpy(float), 4).tolist(),
        "y": np.round(points["y"].to_numpy(float), 4).tolist(),
        "text": points["text"].tolist(),  # searched and shown in the browser, as DOM text only
        "hover_chars": charts.HOVER_CHARS,  # where a hover label cuts it
        "label": [None if label is None or label != label else str(label) for label in points["label"]],
        "colourings": colourings,
        "names": pipeline.area_names(store, projection_id, points),  # by zoom level
        "density": density,
    }


def _sae(store: Store, model_id: int, write: _Writer) -> None:
    stats = features.statistics(store, model_id)
    columns = ["feature", "label", "density", "max", "fires"]
    rows = stats[columns].to_dict("split")["data"]
    write(f"sae-{model_id}.json", {"columns": columns, "rows": rows, "opening": features.opening_feature(stats)})
    for feature in stats.loc[stats["fires"] > 0, "feature"].astype(int):
        write(f"sae-{model_id}/{feature}.json", features.feature_record(store, model_id, int(feature), stats))


def _codebook(store: Store, model_id: int) -> dict:
    book = codebook.codebook(store, model_id)
    return {
        "size": int(book.size),
        "counts": book.usage["count"].astype(int).tolist(),
        "codes": book.usage["code"].astype(int).tolist(),
        "gini": float(book.gini),
        "lorenz": {"codes": book.lorenz["codes"].tolist(), "uses": book.lorenz["uses"].tolist()},
    }


def _vae(store: Store, model_id: int) -> dict:
    """What the VAE pages would show on their first visit, decoded now: prior samples, the first
    example sentence moved along the most informative dimensions, the path between two examples."""
    space = latent_space.open_space(store, model_id)
    start, end = (space.examples(2) * 2)[:2]
    traversal = space.traverse(start, "dimension", space.informative_dimensions(3))
    path, smoothness, _ = space.interpolate(start, end)
    return {
        "samples": space.sample(8),
        "traversal": {"text": start, "rows": traversal.to_dict("split")["data"]},
        "interpolation": {"from": start, "to": end, "rows": path.to_dict("split")["data"], "smoothness": smoothness},
    }


class _Writer:
    """Writes the site's JSON files under data/, counting the bytes as it goes: past the size limit
    the export stops at once (and leaves nothing), rather than after writing the whole site."""

    def __init__(self, folder: Path, max_mb: float, written: int):
        self.folder, self.max_mb, self.written = folder, max_mb, written

    def __call__(self, name: str, value) -> None:
        data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        self.written += len(data)
        if self.written > self.max_mb * 2**20:
            raise LatentvizError(
                f"the static site would be over the limit of {self.max_mb:,.0f} MB (--max-mb; "
                f"{self.written / 2**20:,.0f} MB by {name}): export fewer datasets or models"
            )
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
