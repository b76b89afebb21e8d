"""A newcomer's first hour, timed: what the pages promise against what the jobs take.

From an empty workspace, through one worker process (as `latentviz serve` runs jobs), one after
another: the default map (ingest BBC News, encode with MiniLM, UMAP), the Codebook's VQ defaults,
the SAE Train page's quick SAE (SmolLM2's first conversion, the capture, training and the feature
dashboards) and the Text VAE defaults. Each time is from queuing until the job's row says done. The
pages quote `latentviz.estimates`; this prints each measured time beside it and their ratio (the
target: within 1.5× either way on the machine the estimates were measured on).

    python bench/first_hour.py [--out bench/results/first_hour.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from latentviz import estimates, jobs, runs, settings
from latentviz.store import Store


def run_until_done(store: Store, kind: str, params: dict) -> float:
    start = time.perf_counter()
    job_id = jobs.submit(store, kind, params)
    while True:
        job = store.job(job_id)
        if job["status"] == "done":
            return time.perf_counter() - start
        if job["status"] not in ("queued", "running"):
            raise SystemExit(f"{kind} ended {job['status']}: {job['error']}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/results/first_hour.json")
    args = parser.parse_args()

    dataset = settings.BUILTIN_DATASET
    steps = [
        ("first map", "default map", {"dataset": dataset}, estimates.FIRST_MAP_S),
        ("VQ defaults", "train vq", jobs.training_params(runs.VQRun(dataset=dataset)), estimates.VQ_S),
        ("quick SAE", "train sae", jobs.training_params(replace(runs.SAE_QUICK, dataset=dataset)), estimates.SAE_S),
        ("VAE defaults", "train vae", jobs.training_params(runs.VAERun(dataset=dataset)), estimates.VAE_S),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "first.duckdb"
        store = Store(db)
        worker = subprocess.Popen([sys.executable, "-m", "latentviz", "worker", "--db", str(db)])
        try:
            for name, kind, params, promised in steps:
                measured = run_until_done(store, kind, params)
                rows.append({"step": name, "measured_s": round(measured, 1), "promised_s": promised})
                print(f"{name:<14} {measured:8.1f} s   promised {promised:6.0f} s   ratio {measured / promised:.2f}")
        finally:
            worker.terminate()
            worker.wait(60)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    result = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "steps": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
