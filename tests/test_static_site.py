"""`latentviz export --static`: plain files with everything the viewer reads, and a size limit."""

import json

import pytest

from latentviz import charts, features, static_site
from latentviz.cli import main
from latentviz.errors import LatentvizError
from latentviz.store import Store


def test_the_site_holds_every_map_feature_dashboard_and_codebook(trained_workspace, tmp_path):
    source = Store(trained_workspace, read_only=True)
    sizes = static_site.export(source, tmp_path / "site", datasets=["bbc-news"])
    site = tmp_path / "site"
    assert {"index.html", "site.js", "plotly.min.js"} <= {p.name for p in site.iterdir()}
    assert sizes["total"] == sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    index = json.loads((site / "data" / "index.json").read_text())
    assert [m["id"] for m in index["maps"]] == source.projections()["id"].tolist()
    (sae,) = index["saes"]
    (book,) = index["codebooks"]
    (vae,) = index["vaes"]

    points = json.loads((site / "data" / f"map-{index['maps'][0]['id']}.json").read_text())
    assert len(points["x"]) == len(source.texts("bbc-news")) == len(points["text"])
    for colouring in points["colourings"].values():  # every point once, in its colour's trace
        assert sorted(colouring["order"]) == list(range(len(points["x"])))
        assert sum(trace["count"] for trace in colouring["traces"]) == len(points["x"])
    features = json.loads((site / "data" / f"sae-{sae['id']}.json").read_text())
    fired = [row[0] for row in features["rows"] if row[features["columns"].index("fires")] > 0]
    dashboards = {int(p.stem) for p in (site / "data" / f"sae-{sae['id']}").iterdir()}
    assert fired and dashboards == set(fired) and features["opening"] in dashboards
    one = json.loads((site / "data" / f"sae-{sae['id']}" / f"{fired[0]}.json").read_text())
    assert one["examples"] and {
        "promotes",
        "suppresses",
        "promotes_words",
        "suppresses_words",
        "neighbours",
        "cooccurs",
    } == set(one["links"])
    usage = json.loads((site / "data" / f"vq-{book['id']}.json").read_text())
    assert sum(usage["counts"]) > 0 and usage["counts"] == sorted(usage["counts"], reverse=True)

    decoded = json.loads((site / "data" / f"vae-{vae['id']}.json").read_text())
    assert len(decoded["samples"]) == 8 and all(isinstance(text, str) for text in decoded["samples"])
    assert len(decoded["traversal"]["rows"]) == 3 * 7 and len(decoded["interpolation"]["rows"]) == 7

    page = "".join((site / name).read_text() for name in ("index.html", "site.js", "point_map.js"))
    assert (
        ".innerHTML" not in page
        and "insertAdjacentHTML" not in page
        and "http://" not in page
        and "https://" not in page
    )  # DOM text, own files
    assert "default-src 'self'" in page


def test_a_site_over_the_size_limit_is_refused_and_leaves_nothing(trained_workspace, tmp_path, capsys, monkeypatch):
    source = Store(trained_workspace, read_only=True)
    with pytest.raises(LatentvizError, match=r"would be over the limit of 1 MB \(--max-mb; 5 MB by map-"):
        static_site.export(source, tmp_path / "site", max_mb=1)  # plotly.js alone is 4.6 MB
    assert list(tmp_path.iterdir()) == []
    # the limit is checked as the site is written: an over-large one stops there, not after the whole
    written = []
    record = features.feature_record
    monkeypatch.setattr(features, "feature_record", lambda *a: written.append(a) or record(*a))
    fixed = sum(p.stat().st_size for p in [charts.PLOTLY_JS]) / 2**20
    with pytest.raises(LatentvizError, match=r"by sae-\d+/\d+\.json"):
        static_site.export(source, tmp_path / "site", max_mb=fixed + 0.3)
    fired = int(
        (features.statistics(source, int(source.models().set_index("kind").loc["sae", "id"]))["fires"] > 0).sum()
    )
    assert 0 < len(written) < fired and list(tmp_path.iterdir()) == []
    assert main(["export", "--db", str(trained_workspace), "--static", str(tmp_path / "site")]) == 0
    assert "plotly.min.js" in capsys.readouterr().out
