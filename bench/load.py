"""Load check: concurrent read-only sessions against `latentviz serve --bundle`, for a fixed time.

Serves a bundle on loopback; N sessions loop for S seconds over: open the Latent Map, click a
point (its neighbours), open the SAE Features page. Two kinds of client:

  protocol  (default) Streamlit's own websocket protocol, as its frontend speaks it: a rerun
            request (page, query string, widget states) and every message back until the run's
            `script_finished`; the map's points file is fetched over HTTP once per session, as a
            browser does. A click is the map component's value with a new clicked text. No
            drawing: the figures measure the server, and 20 of these fit on a small machine.
  browser   headless Chromium (one browser, a context each): until the map's points are drawn,
            the chosen text is marked, a dashboard shows. On a small machine the 20 browsers'
            software WebGL starves the server of CPU: these figures measure the clients too.

Reported: errors (a Python exception on a page, a failed run, or any step over its 120 s limit),
p50 / p95 of page loads (both pages, and each) and of clicks, the steps done, and the server's peak memory (its process
and children, sampled every 0.5 s).

    python bench/load.py --bundle demo [--client protocol|browser] [--sessions 20] [--seconds 60]
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serving import free_port, launch, tree_rss_mb  # noqa: E402

from latentviz.store import Store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
STEP_LIMIT_MS = 120_000
# In the map's frame (map_widget.html, drawn by point_map.js)
DRAWN = "() => !!(window.pointMap && window.pointMap.count > 0)"
POINT_XY = "() => window.pointMap.pointOnPage(Math.random())"
CHOSEN = """() => { const t = window.pointMap.marks.find(t => t.name === 'chosen text');
  return t ? String(t.customdata[0]) : null; }"""


def fetch(address: str) -> bytes:
    with urllib.request.urlopen(address, timeout=STEP_LIMIT_MS / 1000) as reply:
        return reply.read()


async def protocol_session(url: str, text_ids: list[int], deadline: float, record: dict, number: int) -> None:
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    async with websockets.connect(
        url.replace("http", "ws") + "/_stcore/stream", subprotocols=["streamlit"], max_size=None
    ) as socket:

        async def run(query: str = "", page: str = "", widgets: list | None = None) -> dict:
            """One rerun, timed until its script_finished: the pages and map component seen."""
            message = BackMsg()
            message.rerun_script.query_string = query
            message.rerun_script.page_script_hash = page
            for widget in widgets or []:
                message.rerun_script.widget_states.widgets.append(widget)
            start = time.perf_counter()
            await socket.send(message.SerializeToString())
            seen = {"pages": {}, "map": None}
            while True:
                reply = ForwardMsg.FromString(await asyncio.wait_for(socket.recv(), STEP_LIMIT_MS / 1000))
                kind = reply.WhichOneof("type")
                if kind == "navigation":
                    seen["pages"] = {p.url_pathname: p.page_script_hash for p in reply.navigation.app_pages}
                    seen["pages"]["/"] = next(p.page_script_hash for p in reply.navigation.app_pages if p.is_default)
                elif kind == "delta" and reply.delta.WhichOneof("type") == "new_element":
                    element = reply.delta.new_element
                    shown = element.WhichOneof("type")
                    if shown == "exception":
                        record["errors"].append("exception: " + element.exception.message[:200])
                    elif shown == "component_instance" and element.component_instance.component_name.endswith("map"):
                        seen["map"] = element.component_instance
                    elif shown == "heading":  # what the run showed: a click's neighbours, a feature's dashboard
                        seen[element.heading.body.split(" ")[0]] = True
                elif kind == "script_finished":
                    if reply.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                        record["errors"].append(f"run ended {reply.script_finished}")
                    seen["seconds"] = time.perf_counter() - start
                    return seen

        clicks, pages, fetched = 0, {}, set()
        while time.monotonic() < deadline:
            try:
                shown = await run("color=label", page=pages.get("/", ""))  # the map, named once known
                pages = shown["pages"] or pages
                component = shown["map"]
                points = json.loads(component.json_args)["points"]
                if points not in fetched:  # as a browser: the points' file once, over HTTP, then kept
                    start = time.perf_counter()
                    address = f"{url}/component/{component.component_name}/{points}"
                    await asyncio.to_thread(fetch, address)
                    fetched.add(points)
                    shown["seconds"] += time.perf_counter() - start
                record["map"].append(shown["seconds"])
                clicks += 1
                state = {
                    "frame": f"load-{number}",
                    "click": text_ids[(number * 7919 + clicks) % len(text_ids)],
                    "click_seq": clicks,
                    "selected": [],
                    "selected_seq": 0,
                }
                widget = WidgetState(id=component.id, json_value=json.dumps(state))
                clicked = await run("color=label", page=pages["/"], widgets=[widget])
                if not clicked.get("Nearest"):
                    record["errors"].append("a click listed no neighbours")
                record["click"].append(clicked["seconds"])
                features = pages.get("sae-features")
                if features:
                    opened = await run(page=features)
                    if not opened.get("Feature"):
                        record["errors"].append("the Features page showed no feature")
                    record["features"].append(opened["seconds"])
            except Exception as error:  # a step past its limit, or the connection gone: counted, then go on
                record["errors"].append(
                    f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
                )
                return


async def session(browser, url: str, deadline: float, record: dict) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        while time.monotonic() < deadline:
            try:
                start = time.perf_counter()
                await page.goto(f"{url}/?color=label")
                owner = await page.wait_for_selector("iframe[title*=latent_map]", timeout=STEP_LIMIT_MS)
                frame = await owner.content_frame()
                await frame.wait_for_function(DRAWN, timeout=STEP_LIMIT_MS)
                record["map"].append(time.perf_counter() - start)
                await check(page, record)

                await page.wait_for_timeout(500)
                box, (x, y) = await owner.bounding_box(), await frame.evaluate(POINT_XY)
                before = await frame.evaluate(CHOSEN)
                start = time.perf_counter()
                await page.mouse.click(box["x"] + x, box["y"] + y)
                await frame.wait_for_function(f"() => ({CHOSEN})() !== {json.dumps(before)}", timeout=STEP_LIMIT_MS)
                await page.wait_for_selector("text=Nearest neighbours (cosine)", timeout=STEP_LIMIT_MS)
                record["click"].append(time.perf_counter() - start)
                await check(page, record)

                start = time.perf_counter()
                await page.goto(f"{url}/sae-features")
                await page.wait_for_selector("text=Top activations", timeout=STEP_LIMIT_MS)
                record["features"].append(time.perf_counter() - start)
                await check(page, record)
            except Exception as error:  # a step past its limit, or the page gone: counted, then go on
                record["errors"].append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
    finally:
        await context.close()


async def check(page, record: dict) -> None:
    if await page.locator("[data-testid=stException]").count():
        record["errors"].append("exception on " + page.url)


async def drive(url: str, client: str, sessions: int, seconds: float, text_ids: list[int]) -> dict:
    from playwright.async_api import async_playwright

    record = {"map": [], "features": [], "click": [], "errors": []}
    if client == "protocol":
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(protocol_session(url, text_ids, deadline, record, n) for n in range(sessions)))
        return record
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(session(browser, url, deadline, record) for _ in range(sessions)))
        await browser.close()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--client", choices=["protocol", "browser"], default="protocol")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", default="bench/results/load.json")
    args = parser.parse_args()

    shown = Store(Path(args.bundle) / "workspace.duckdb", read_only=True)
    if "sae" not in set(shown.models()["kind"]):  # else every Features visit would count as an error
        raise SystemExit(f"{args.bundle} holds no SAE, and the sessions open its Features page: export one with an SAE")
    text_ids = shown.projection_points(int(shown.projections()["id"].max()))["id"].tolist()  # the default map
    port = free_port()
    command = [sys.executable, "-m", "latentviz", "serve", "--bundle", args.bundle, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    server = launch(command, url, 120)
    peak, sampling = [0.0], [True]

    def sample() -> None:
        while sampling[0]:
            peak[0] = max(peak[0], tree_rss_mb(server.pid))
            time.sleep(0.5)

    try:
        idle = tree_rss_mb(server.pid)
        threading.Thread(target=sample, daemon=True).start()
        start = time.monotonic()
        record = asyncio.run(drive(url, args.client, args.sessions, args.seconds, text_ids))
        wall = time.monotonic() - start
    finally:
        sampling[0] = False
        server.terminate()
        server.wait(30)

    def quantiles(values: list[float]) -> dict:
        return {"n": len(values)} | (
            {"p50_s": round(float(np.median(values)), 2), "p95_s": round(float(np.percentile(values, 95)), 2)}
            if values
            else {}
        )

    result = {
        "client": args.client,
        "sessions": args.sessions,
        "seconds": args.seconds,
        "wall_s": round(wall, 1),
        "cpus": os.cpu_count(),
        "errors": len(record["errors"]),
        "error_kinds": sorted(set(record["errors"]))[:10],
        "page_loads": quantiles(record["map"] + record["features"]),
        "map_loads": quantiles(record["map"]),
        "features_loads": quantiles(record["features"]),
        "clicks": quantiles(record["click"]),
        "server_idle_mb": round(idle),
        "server_peak_mb": round(peak[0]),
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
