"""Does watching slow the work? A VQ training run at the Codebook's defaults (4x the steps, so pages
have time to open), run by the worker, with
no page open, then with 1 and 3 headless Chromium pages on the Codebook (its live panel watching),
on a copy of a workspace that has a MiniLM encoding of the dataset. Each row: the run's steps/s,
measured from the job's own progress between 20% and 90% of its steps, and the CPU seconds per
second the server and the browsers took meanwhile. Target (issue 27): within 10% of no page.

    latentviz ingest bbc-news --limit 1000 --db /tmp/watch.duckdb
    latentviz encode --dataset bbc-news --db /tmp/watch.duckdb
    python bench/watch.py --db /tmp/watch.duckdb [--steps 8000] [--pages 0 1 3] [--out bench/results/watch.json]

Single runs move by about ten points on two cores: repeat the cells (`--pages 0 1 3 0 1 3`) and compare means.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serving import free_port, launch  # noqa: E402

from latentviz import jobs, runs  # noqa: E402
from latentviz.store import Store, copy_workspace  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants so far."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure(store: Store, run, pids: dict[str, int], open_pages) -> dict:
    """The run's steps/s and the CPU each process tree used, between 20% and 90% of its steps; the
    pages open once the run is queued, as after a click on Train (a page polls only while a job runs)."""
    job = jobs.submit(store, runs.FAMILIES["vq"].train_job, jobs.training_params(run))
    tabs = open_pages()
    marks, cpu = [], {}
    while True:
        row = store.job(job)
        if row["status"] in ("done", "failed", "interrupted"):
            break
        total = row["total"] or 0
        if row["message"] and str(row["message"]).startswith("training") and total:
            share = row["done"] / total
            if not marks and share >= 0.2:
                marks.append((time.perf_counter(), row["done"]))
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            elif marks and share >= 0.9:
                marks.append((time.perf_counter(), row["done"]))
                elapsed = marks[1][0] - marks[0][0]
                used = {name: round((cpu_seconds(pid) - cpu[name]) / elapsed, 2) for name, pid in pids.items()}
                break
        time.sleep(0.5)  # a light look: this loop shares the cores too
    jobs.wait(store, job, timeout=3600)
    for tab in tabs:
        tab.close()
    if len(marks) < 2:
        raise SystemExit(f"the run ended before it could be timed: {store.job(job)['status']}")
    return {"steps_per_second": round((marks[1][1] - marks[0][1]) / elapsed, 2), "cpu_per_second": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="bbc-news")
    parser.add_argument("--steps", type=int, default=4 * runs.VQRun().training.steps)  # time for pages to open
    parser.add_argument("--pages", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--worker-threads", type=int, help="torch threads of the worker (default: torch's own)")
    parser.add_argument("--out", default="bench/results/watch.json")
    args = parser.parse_args()
    from dataclasses import replace

    from playwright.sync_api import sync_playwright

    run = runs.VQRun(dataset=args.dataset)
    run = replace(run, training=replace(run.training, steps=args.steps))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "watch.duckdb"
        copy_workspace(args.db, db)
        store = Store(db)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        serve = [sys.executable, "-m", "latentviz", "serve", "--db", str(db), "--port", str(port)]
        server = launch([*serve, "--no-bootstrap", "--no-worker"], url, 120, env=env)
        threads = {"OMP_NUM_THREADS": str(args.worker_threads)} if args.worker_threads else {}
        worker = subprocess.Popen(
            [sys.executable, "-m", "latentviz", "worker", "--db", str(db)], env={**env, **threads}
        )
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
                for count in args.pages:

                    def open_pages(count=count):
                        tabs = [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(count)]
                        for tab in tabs:
                            tab.goto(f"{url}/codebook")
                            tab.wait_for_selector("text=Training run #", timeout=120_000)  # the live panel
                        return tabs

                    pids = {"server": server.pid, "worker": worker.pid, "all": os.getpid()}
                    figures = measure(store, run, pids, open_pages)
                    used = figures["cpu_per_second"]
                    # the browsers (and this script's polling): everything started here but server and worker
                    used["browsers"] = round(used.pop("all") - used["server"] - used["worker"], 2)
                    rows.append({"pages": count, **figures})
                    print(rows[-1], flush=True)
                browser.close()
        finally:
            worker.terminate()
            server.terminate()
            worker.wait(10)
            server.wait(10)
    base = rows[0]["steps_per_second"]
    for row in rows:
        row["slowdown"] = round(1 - row["steps_per_second"] / base, 3)
    result = {"steps": args.steps, "dataset": args.dataset, "worker_threads": args.worker_threads, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
