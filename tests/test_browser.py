"""The served app in a real browser: Debian's Chromium, headless, driven by Playwright."""

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from serving import free_port, launch

from latentviz.store import copy_workspace

CHROMIUM = "/usr/bin/chromium"
# Screenshots of every page go here (look at them: AppTest cannot see a squashed chart)
ARTIFACTS = Path(os.environ.get("LATENTVIZ_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser

# In the map's frame (map_widget.html, drawn by point_map.js): the first point's position in the frame,
# and how many points its colour has.
POINT_XY = """() => { const map = window.pointMap, first = map.traces[0];
  return [...map.pointOnPage(0), first.end - first.start]; }"""
# The map's own hover label (point_map.js's .pm-tip): shown, and its text fetched (not the "…" placeholder)
HOVER_TEXT = "() => document.querySelector('.pm-tip .text').textContent"
HOVER_SHOWN = """() => { const tip = document.querySelector('.pm-tip');
  return tip.style.display === 'block' && !['', '…'].includes(tip.querySelector('.text').textContent); }"""


@pytest.fixture(scope="module")
def served(mapped_workspace, tmp_path_factory):
    db = tmp_path_factory.mktemp("served") / "workspace.duckdb"
    copy_workspace(mapped_workspace, db)
    os.environ["LATENTVIZ_SERVED_DB"] = str(db)  # tests that queue work on the served workspace
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = launch(
        [sys.executable, "-m", "latentviz", "serve", "--db", str(db), "--port", str(port), "--no-bootstrap"],
        url,
        60,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, served):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(served)
    yield tab
    tab.close()


def test_a_deep_link_as_first_visit_opens_that_page(browser, served):
    # Runs first, on a fresh server: the URL alone must select the page, with the app's own navigation.
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(f"{served}/data")
    tab.wait_for_selector("h1:has-text('Data')", timeout=90_000)
    tab.wait_for_selector("[data-testid=stSidebarNav]", timeout=30_000)
    nav = tab.locator("[data-testid=stSidebarNav]").inner_text().split()
    assert "Latent" in nav and "Data" in nav and "app" not in nav  # the app's titles, not legacy file names
    assert tab.get_by_text("Page not found").count() == 0
    tab.close()


def map_frame(tab):
    """The Latent Map's frame element and frame, once its points are drawn."""
    owner = tab.wait_for_selector("iframe[title*=latent_map]", timeout=90_000)
    frame = owner.content_frame()
    frame.wait_for_function("() => window.pointMap && window.pointMap.count > 0", timeout=60_000)
    return owner, frame


def point_xy(owner, frame) -> tuple[float, float, int]:
    """A data point's position on the page, and how many points its trace has."""
    box, (x, y, count) = owner.bounding_box(), frame.evaluate(POINT_XY)
    return box["x"] + x, box["y"] + y, count


def test_map_is_drawn_with_points(page, tmp_path_factory):
    owner, frame = map_frame(page)
    x, y, count = point_xy(owner, frame)
    assert count > 0
    shot = tmp_path_factory.mktemp("screens") / "map.png"
    owner.screenshot(path=str(shot))
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    coloured = (np.abs(pixels - pixels.mean(2, keepdims=True)).sum(2) > 60).sum()  # saturated marker pixels
    assert coloured > 500, "the map drew no coloured points"


def test_hover_shows_the_sentence_and_click_lists_neighbours(page):
    owner, frame = map_frame(page)
    x, y, _ = point_xy(owner, frame)
    page.mouse.move(x, y)
    frame.wait_for_function(HOVER_SHOWN, timeout=10_000)  # the text, fetched when hovered
    frame.evaluate("() => { window.pointsBefore = window.pointMap.x; }")
    page.mouse.click(x, y)
    page.wait_for_selector("text=Nearest neighbours (cosine)", timeout=60_000)  # under the map, in view
    page.wait_for_selector("text=★", timeout=10_000)
    frame.wait_for_function("() => window.pointMap.marks.some(t => t.name === 'neighbours')", timeout=30_000)
    # The points were not sent again: the frame still draws the very same arrays, only the overlays are new.
    assert frame.evaluate("() => window.pointMap.x === window.pointsBefore")


def test_clearing_the_neighbours_keeps_the_tab_one_was_on(page):
    # the neighbours of the click above are open over the tabs; clearing them once reopened the first tab
    page.get_by_role("tab", name="Your text").click()
    page.get_by_role("button", name="Clear").click()
    page.wait_for_selector("text=Nearest neighbours (cosine)", state="detached", timeout=30_000)
    assert page.get_by_role("tab", name="Your text").get_attribute("aria-selected") == "true"


def test_the_wheel_scrolls_the_page_until_the_map_is_in_use(browser, served):
    """Over the map the wheel scrolls the page (a hint says how to zoom); after a click on the map, or
    with Ctrl held, it zooms."""
    tab = browser.new_page(viewport={"width": 1400, "height": 700})
    tab.goto(served)
    owner, frame = map_frame(tab)
    box = owner.bounding_box()
    x_range = "() => window.pointMap.view.x.join(',')"
    scrolled = "() => Math.max(window.scrollY, ...[...document.querySelectorAll('*')].map(e => e.scrollTop))"
    start, top = frame.evaluate(x_range), tab.evaluate(scrolled)
    tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + 150)
    tab.mouse.wheel(0, 300)
    tab.wait_for_timeout(500)
    assert frame.evaluate(x_range) == start and tab.evaluate(scrolled) > top  # the page moved, the map did not
    assert frame.evaluate("() => getComputedStyle(document.getElementById('hint')).opacity") != "0"
    tab.keyboard.down("Control")
    tab.mouse.wheel(0, -200)
    tab.keyboard.up("Control")
    frame.wait_for_function(f"() => ({x_range})() !== {json.dumps(start)}", timeout=10_000)  # zoomed
    box = owner.bounding_box()  # the page scrolled under the pointer
    tab.mouse.click(box["x"] + 40, box["y"] + 120)  # the map is in use: the wheel zooms it
    zoomed = frame.evaluate(x_range)
    tab.mouse.wheel(0, -200)
    frame.wait_for_function(f"() => ({x_range})() !== {json.dumps(zoomed)}", timeout=10_000)
    tab.close()


# The box around every point drawn, in the map's frame, 4 px wider a side
POINTS_BOX = """() => { const map = window.pointMap, plot = map.plot.getBoundingClientRect();
  let [left, top, right, bottom] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < map.count; i++) {
    const [x, y] = map.toPixels(map.x[i], map.y[i]);
    left = Math.min(left, x); top = Math.min(top, y); right = Math.max(right, x); bottom = Math.max(bottom, y);
  }
  return [plot.left + left - 4, plot.top + top - 4, plot.left + right + 4, plot.top + bottom + 4]; }"""


def test_dragging_a_box_selects_and_counts_texts(page):
    owner, frame = map_frame(page)
    owner.scroll_into_view_if_needed()  # the map in view, wherever the last click left the page
    box = owner.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.8, steps=10)
    page.mouse.up()
    page.get_by_role("tab", name="Selection").click(timeout=60_000)
    page.wait_for_selector("text=texts selected", timeout=30_000)
    # a lasso around every point selects them all
    frame.click("button[data-mode=lasso]")
    owner.scroll_into_view_if_needed()
    box, (left, top, right, bottom) = owner.bounding_box(), frame.evaluate(POINTS_BOX)  # where the tab left the page
    left, top, right, bottom = box["x"] + left, box["y"] + top, box["x"] + right, box["y"] + bottom
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in [(right, top), (right, bottom), (left, bottom), (left, top + 1)]:
        page.mouse.move(x, y, steps=5)
    page.mouse.up()
    count = frame.evaluate("window.pointMap.count")
    page.wait_for_selector(f"text={count} texts selected", timeout=30_000)
    frame.click("button[data-mode=select]")


RENDERER = Path(__file__).resolve().parent.parent / "latentviz" / "point_map.js"


def test_the_renderer_puts_points_on_their_pixels_and_contours_on_the_level(browser):
    """point_map.js alone in a blank page: a point's colour lands on its pixel and the pick index there
    names it; marching squares on a cone z = distance from its centre give segments on the circle of
    the level's radius."""
    tab = browser.new_page(viewport={"width": 400, "height": 300})
    tab.set_content(f"<div id=map style='width:200px'></div><script>{RENDERER.read_text()}</script>")
    pixel = tab.evaluate("""() => {
      const map = new PointMap(document.getElementById('map'), {height: 100});
      const red = count => [{name: 'a', color: '#ff0000', opacity: 1, size: 1, count}];  // opaque, 1 px
      map.setPoints({traces: red(2), x: [0, 10], y: [0, 10], ids: [7, 8]});
      map.setView([0, 10], [0, 10]);
      const [px, py] = map.toPixels(5, 5);
      map.setPoints({traces: red(3), x: [0, 10, 5], y: [0, 10, 5], ids: [7, 8, 9]});  // the same extent: the view stays
      const ratio = window.devicePixelRatio || 1, qx = Math.floor(px * ratio), qy = Math.floor(py * ratio);
      const rgb = map.pointsCanvas.getContext('2d').getImageData(qx, qy, 1, 1).data;
      return {rgb: Array.from(rgb.slice(0, 3)), picked: map.ids[map.pick[qy * map.pointsCanvas.width + qx]],
              nearest: map.ids[map.nearest(px, py)], empty: map.nearest(20, 80)};
    }""")
    assert pixel == {"rgb": [255, 0, 0], "picked": 9, "nearest": 9, "empty": -1}
    radii = tab.evaluate("""() => {
      const xs = Array.from({length: 41}, (_, i) => -2 + i * 0.1), ys = xs;
      const z = ys.map(y => xs.map(x => Math.hypot(x, y)));
      return contourSegments(z, xs, ys, 1.5).flatMap(([ax, ay, bx, by]) => [Math.hypot(ax, ay), Math.hypot(bx, by)]);
    }""")
    assert len(radii) > 100 and max(abs(r - 1.5) for r in radii) < 0.01  # every end on the circle of radius 1.5
    tab.close()


PAGES = [
    "",
    "codebook",
    "data",
    "vae-train",
    "vae-diagnostics",
    "vae-traverse",
    "vae-interpolate",
    "vae-arithmetic",
    "sae-train",
    "sae-features",
    "sae-text",
    "sae-evaluate",
    "sae-compare",
]


NAMES = "() => window.pointMap.placedNames || []"
ZOOM_IN_4X = """() => { const xa = window.pointMap.view.x, ya = window.pointMap.view.y;
  const x = (xa[0] + xa[1]) / 2, y = (ya[0] + ya[1]) / 2, w = (xa[1] - xa[0]) / 8, h = (ya[1] - ya[0]) / 8;
  window.pointMap.setView([x - w, x + w], [y - h, y + h]); }"""


def test_the_map_names_areas_by_zoom_draws_density_and_its_legend_filters(browser, served):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(served)
    owner, frame = map_frame(tab)
    frame.wait_for_function(f"() => ({NAMES})().length > 0", timeout=30_000)
    at_home = frame.evaluate(NAMES)
    frame.evaluate(ZOOM_IN_4X)  # finer areas are named; the broad names left in view stay
    frame.wait_for_function(f"() => ({NAMES})().some(name => !{json.dumps(at_home)}.includes(name))", timeout=10_000)
    contour = "() => window.pointMap.densityLines > 0"  # segments of contour lines drawn
    assert not frame.evaluate(contour)
    frame.click("#density")
    frame.wait_for_function(contour, timeout=10_000)
    frame.click("#names")
    frame.wait_for_function(f"() => ({NAMES})().length === 0", timeout=10_000)
    frame.locator(".pm-legend.base .item").first.click()  # a colour off: the page leaves it out of the rest
    tab.wait_for_selector("text=1 colour turned off in the legend", timeout=60_000)
    tab.close()


def test_every_page_draws_requests_only_its_own_host_and_is_photographed(browser, served):
    """One visit per page checks all three: it draws without a Python or a script error, nothing it
    loads comes from another host (icons, fonts and charts included), and its screenshot is kept."""
    from urllib.parse import urlparse

    own = urlparse(served).netloc
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path in PAGES:
        tab = browser.new_page(viewport={"width": 1400, "height": 1400})
        errors, hosts = [], set()
        tab.on("pageerror", lambda error, errors=errors: errors.append(error))
        tab.on("request", lambda request, hosts=hosts: hosts.add(urlparse(request.url).netloc))
        tab.goto(f"{served}/{path}")
        tab.wait_for_selector("h1", timeout=90_000)
        tab.wait_for_load_state("networkidle")  # icons, fonts and charts load after the first paint
        tab.wait_for_timeout(500)  # and then draw
        tab.screenshot(path=str(ARTIFACTS / f"{path or 'map'}.png"))
        assert tab.locator("[data-testid=stException]").count() == 0, f"/{path} shows a Python exception"
        assert not errors, f"/{path}: {errors[0]}"
        assert hosts <= {own, ""}, f"/{path} requested {sorted(hosts - {own, ''})}"
        tab.close()


def found_frame(tab, selector: str, seconds: float = 60):
    """The first of the page's frames that shows `selector`, looked for until `seconds` have passed (None);
    frames a rerun replaces meanwhile are skipped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for frame in tab.frames:
            try:
                if frame.query_selector(selector):
                    return frame
            except Exception:  # detached while looked at: the next round sees its replacement
                continue
        tab.wait_for_timeout(200)
    return None


def test_a_page_redraws_when_its_job_ends_while_another_waits(browser, served):
    """The Codebook shows the first run's results when it ends, while a second run still waits or trains."""
    import specs

    from latentviz import jobs, runs, settings
    from latentviz.store import Store

    store = Store(os.environ["LATENTVIZ_SERVED_DB"])
    tiny = store.encodings()["backbone"].iloc[0]

    def run(steps):
        training = {"steps": steps, "batch_size": 32, "eval_every": 100, "checkpoint_every": 10_000}
        return jobs.training_params(specs.vq("bbc-news", backbone=tiny, model={"codebook_size": 8}, training=training))

    os.environ[settings.WORKER_ENV] = "1"  # as under `serve`: queuing starts a worker process
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        first = jobs.submit(store, runs.FAMILIES["vq"].train_job, run(3000))  # still running when looked at
        second = jobs.submit(store, runs.FAMILIES["vq"].train_job, run(200_000))
        tab.goto(f"{served}/codebook")
        tab.wait_for_selector("text=Training run #", timeout=90_000)  # the first run, live
        # the queue's frame, the first of two (the live curves are drawn in the second)
        queue = tab.wait_for_selector("iframe[title*=job_watch] >> visible=true", timeout=30_000).content_frame()
        queue.wait_for_selector(".job .line:has-text('train vq')", timeout=30_000)  # both runs' bars, drawn
        assert queue.locator(".job").count() == 2
        assert "queued, next in line" in queue.locator(".job").nth(1).inner_text()
        before = queue.locator(".job .line").first.inner_text()  # the bar moves without the page rerunning
        queue.wait_for_function(f"() => document.querySelector('.job .line').textContent !== {json.dumps(before)}")
        figures = "[data-testid=stMetricLabel]:has-text('Perplexity')"  # the finished run's figures
        assert tab.locator(figures).count() == 0 and store.job(first)["status"] == "running"
        jobs.wait(store, first, timeout=300)
        tab.wait_for_selector(figures, timeout=30_000)  # redrawn by itself
        assert tab.get_by_text("train vq is done").count() == 1  # and says so
        assert store.job(second)["status"] in ("queued", "running")
        # the second run, live: one SVG panel per metric, drawn by the live panel's own frame, gaining points
        # as the run records them, with no rerun of the page
        live = found_frame(tab, "#curves svg .metric")  # a panel's name drawn: not an empty frame being replaced
        assert live is not None, "no live curves drawn"
        panels = live.locator("#curves svg .metric").all_text_contents()
        assert {"perplexity", "utilisation", "reconstruction"} <= set(panels), panels
        drawn = live.evaluate("() => document.querySelectorAll('#curves svg')[0].querySelectorAll('circle').length")
        live.evaluate(  # a rerun of the page or of its fragment sends the frame its args again
            "() => { window.renders = 0; window.addEventListener('message', e => {"
            " if (e.data && e.data.type === 'streamlit:render') window.renders += 1; }); }"
        )
        live.wait_for_function(
            f"() => document.querySelectorAll('#curves svg')[0].querySelectorAll('circle').length > {drawn}",
            timeout=60_000,
        )
        assert live.evaluate("() => window.renders") == 0
        tab.screenshot(path=str(ARTIFACTS / "codebook-live-curves.png"))
        tab.wait_for_timeout(2_000)
        tab.screenshot(path=str(ARTIFACTS / "codebook-after-a-run-while-another-trains.png"))
    finally:
        os.environ.pop(settings.WORKER_ENV)
        jobs.cancel(store, second)
        worker = Path(f"{store.path}.worker")
        if worker.exists():  # it would wait five idle minutes before leaving by itself
            os.kill(int(worker.read_text()), 9)
        tab.close()


def test_a_map_build_shows_its_umap_stage_while_it_fits(browser, served, tiny_bert):
    """What a first run shows while UMAP fits: the stage by name, not a full bar with nothing happening."""
    import pandas as pd

    from latentviz import jobs, settings
    from latentviz.store import Store

    store = Store(os.environ["LATENTVIZ_SERVED_DB"])
    # enough points for UMAP to fit for several seconds (40 fitted too quickly for the queue's
    # snapshots, written every SNAPSHOT_EVERY_S, to catch the stage every time)
    texts = [f"sentence number {i} about {topic}" for i in range(1500) for topic in ("markets", "football")]
    store.add_dataset("staged", "test", pd.DataFrame({"text": texts}))
    os.environ[settings.WORKER_ENV] = "1"
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        job = jobs.submit(store, "encode and map", {"dataset": "staged", "backbone": tiny_bert, "method": "umap"})
        tab.goto(f"{served}/data")  # as a first visit does: the page finds its job running
        tab.wait_for_selector("h1:has-text('Data')", timeout=90_000)
        # the stage by name, while it runs; the queue's frame is looked up afresh each time, as a page rerun
        # (a job of an earlier test found interrupted) may replace it
        assert found_frame(tab, "text=fitting UMAP", 120) is not None, "the UMAP stage was not shown"
        tab.screenshot(path=str(ARTIFACTS / "data-while-umap-fits.png"))
        assert jobs.wait(store, job, timeout=300)["status"] == "done"
    finally:
        os.environ.pop(settings.WORKER_ENV)
        worker = Path(f"{store.path}.worker")
        if worker.exists():
            os.kill(int(worker.read_text()), 9)
        tab.close()


def test_hostile_text_runs_no_script_on_any_page(browser, served, tiny_bert):
    import pandas as pd

    from latentviz import pipeline
    from latentviz.store import Store

    store = Store(os.environ["LATENTVIZ_SERVED_DB"])
    attacks = [
        "<img src=x onerror=\"window.__pwned='img'\"> plain words here",
        "<script>window.__pwned='script'</script> more plain words",
        "<b onmouseover=\"window.__pwned='hover'\">bold</b> and &amp; entities",
    ]
    store.add_dataset("hostile", "test", pd.DataFrame({"text": attacks * 4, "label": ["<i>x</i>"] * 12}))
    projection_id = pipeline.project(store, pipeline.encode(store, "hostile", backbone_name=tiny_bert), method="pca")
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for path in (f"?map={projection_id}&color=label", f"?map={projection_id}&q=plain", "data"):
        tab.goto(f"{served}/{path}")
        tab.wait_for_selector("h1", timeout=90_000)
        tab.wait_for_load_state("networkidle")  # the page's texts and frames are in
        if "color" in path:  # hovered without a search: no overlay over the points
            owner, frame = map_frame(tab)
            for _ in range(5):  # the hover label shows the text: escaped, never run
                x, y, _ = point_xy(owner, frame)  # again each time: a late redraw moves the points
                tab.mouse.move(x + 1, y)
                tab.mouse.move(x, y)
                if frame.evaluate(HOVER_SHOWN):
                    break
                tab.wait_for_timeout(2_000)
            assert frame.evaluate(HOVER_SHOWN), "no hover label"
            assert "<" in frame.evaluate(HOVER_TEXT), "the hovered text is shown as typed, markup and all"
        assert all(f.evaluate("() => window.__pwned") is None for f in tab.frames) and not dialogs, path
    tab.close()


def test_a_bundle_serves_read_only_and_permalinks_restore_the_view(browser, trained_workspace, tmp_path_factory):
    from latentviz import bundle
    from latentviz.store import Store

    folder = tmp_path_factory.mktemp("bundle") / "demo"
    bundle.export(Store(trained_workspace, read_only=True), folder)
    shown = Store(folder / "workspace.duckdb", read_only=True)
    projection_id = int(shown.projections()["id"].iloc[0])  # not the newest, which the page opens on by default
    text_id = int(shown.projection_points(projection_id)["id"].iloc[3])
    models = shown.models().set_index("kind")["id"].astype(int)
    summaries = shown.feature_summaries(int(models["sae"]))
    feature = int(summaries[summaries["fires"] > 0]["feature"].iloc[-1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = launch(
        [sys.executable, "-m", "latentviz", "serve", "--bundle", str(folder), "--port", str(port)],
        url,
        60,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))},
    )
    try:
        for visit in range(2):  # each in a fresh context: nothing but the URL carries the view
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            tab = context.new_page()
            tab.goto(f"{url}/?map={projection_id}&color=label&q=said&text={text_id}")
            owner, frame = map_frame(tab)
            tab.wait_for_selector("text=Nearest neighbours (cosine)", timeout=60_000)
            tab.wait_for_selector("text=texts contain “said”", timeout=30_000)
            frame.wait_for_function(
                "() => ['search matches', 'chosen text'].every(n => window.pointMap.marks.some(t => t.name === n))",
                timeout=30_000,
            )
            assert tab.get_by_role("combobox", name="Map").input_value().endswith(f"(#{projection_id})")
            assert tab.get_by_text("read-only").count()  # the sidebar says so
            if visit == 1:  # a visitor's text is placed, and never written to the bundle
                tab.get_by_role("tab", name="Your text").click()
                tab.get_by_label("Type sentences, one per line").fill("The striker scored twice in the final.")
                tab.get_by_role("button", name="Place on the map").click()
                tab.wait_for_selector("text=★1", timeout=120_000)
            else:  # the other pages' links, each opened cold: the same feature, the same codebook
                tab.goto(f"{url}/sae-features?model={models['sae']}&feature={feature}")
                tab.wait_for_selector(f"h3:has-text('Feature {feature}:')", timeout=90_000)
                tab.goto(f"{url}/vae-interpolate?model={models['vae']}&from=the+market+rose&to=the+team+won&steps=5")
                tab.wait_for_selector("text=t = 1.00", timeout=90_000)  # the five steps of that path
                assert tab.get_by_text(re.compile(r"^t = \d\.\d\d$")).count() == 5
                assert tab.get_by_label("From").input_value() == "the market rose"
                tab.goto(f"{url}/codebook?models={models['vq']}&detail={models['vq']}&log=1")
                tab.wait_for_selector("text=vq", timeout=90_000)
                assert tab.get_by_label("Log scale for usage").is_checked()
            assert tab.locator("[data-testid=stException]").count() == 0
            context.close()
    finally:
        server.terminate()
        server.wait(10)
    assert bundle.check(folder) == folder / "workspace.duckdb"  # every checksum still holds


def test_the_static_site_works_over_plain_http_and_runs_no_hostile_script(
    browser, trained_workspace, tmp_path, tiny_bert
):
    import functools
    import http.server
    import threading

    import pandas as pd

    from latentviz import pipeline, static_site
    from latentviz.store import Store

    db = tmp_path / "workspace.duckdb"
    copy_workspace(trained_workspace, db)
    store = Store(db)
    attacks = ["<img src=x onerror=\"window.__pwned='img'\"> plain words", "<script>window.__pwned='s'</script> plain"]
    store.add_dataset("hostile", "test", pd.DataFrame({"text": attacks * 6, "label": ["<b onclick=x>l</b>"] * 12}))
    pipeline.project(store, pipeline.encode(store, "hostile", backbone_name=tiny_bert), method="pca")
    static_site.export(store, tmp_path / "site")

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    hosts, failures, dialogs = set(), [], []
    tab.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    tab.on("pageerror", lambda error: failures.append(str(error)))
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    drawn = "() => window.pointMap && window.pointMap.count > 0"  # the app's renderer, point_map.js
    try:
        tab.goto(f"{url}/#tab=map&q=said")
        tab.wait_for_function(drawn, timeout=60_000)
        assert re.fullmatch(r"\d+ texts contain “said”", tab.locator("#map-count").inner_text())
        tab.wait_for_function("() => (window.pointMap.placedNames || []).length > 0", timeout=10_000)  # as in the app
        tab.screenshot(path=str(ARTIFACTS / "static-map.png"))
        tab.mouse.move(*tab.evaluate("() => window.pointMap.pointOnPage(0)"))  # its text, as in the app
        tab.wait_for_function(HOVER_SHOWN, timeout=10_000)
        x_range = "() => window.pointMap.view.x.join(',')"
        start, box = tab.evaluate(x_range), tab.locator("#map-plot").bounding_box()
        tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tab.mouse.wheel(0, -200)
        tab.wait_for_timeout(500)
        assert tab.evaluate(x_range) == start  # the wheel passed the map by, as in the app
        box = tab.locator("#map-plot").bounding_box()  # the page scrolled under the pointer
        tab.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tab.mouse.wheel(0, -200)
        tab.wait_for_function(f"() => ({x_range})() !== {json.dumps(start)}", timeout=10_000)  # in use: it zooms

        hostile = Store(db).projections()["id"].iloc[-1]
        tab.goto(f"{url}/#tab=map&map={hostile}&q=plain")  # a permalink: the hostile map, searched
        tab.reload()
        tab.wait_for_function(drawn, timeout=60_000)
        tab.wait_for_selector("#map-matches td:has-text('plain words')", timeout=30_000)  # shown as text
        assert "<img src=x" in tab.locator("#map-matches").inner_text()

        tab.click("button[data-tab=features]")
        tab.wait_for_selector("#feature h2", timeout=30_000)
        assert tab.locator("#feature-list tr.pick").count() > 0 and tab.locator("#feature .tok").count() > 0
        first = tab.locator("#feature h2").inner_text()
        tab.locator("#feature a.feature").first.click()  # a neighbour opens its own dashboard
        tab.wait_for_function(f"() => document.querySelector('#feature h2').innerText !== {json.dumps(first)}")
        tab.screenshot(path=str(ARTIFACTS / "static-features.png"))

        tab.click("button[data-tab=codebooks]")
        tab.wait_for_function("() => document.getElementById('vq-usage')._fullData", timeout=30_000)
        assert "codes" in tab.locator("#vq-gini").inner_text()
        tab.screenshot(path=str(ARTIFACTS / "static-codebooks.png"))

        tab.click("button[data-tab=vaes]")
        tab.wait_for_selector("#vae-samples li", timeout=30_000)
        assert tab.locator("#vae-samples li").count() == 8 and tab.locator("#vae-path tr").count() == 7
        tab.screenshot(path=str(ARTIFACTS / "static-vae.png"))
    finally:
        tab.close()
        server.shutdown()
    assert hosts == {f"127.0.0.1:{server.server_address[1]}"}  # nothing beyond the site's own files
    assert not failures and not dialogs
