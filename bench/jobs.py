"""Two jobs together against each alone, through the worker process (`latentviz worker`).

On a copy of a workspace with a MiniLM encoding of a dataset: a VQ training run at its defaults
and a short text VAE run (--epochs, default 2), each queued alone, then both queued at once. One
worker runs the queue throughout (started once, so its start-up is in no figure); each time is
from queuing until the job's row says done. Target (issue 13): together ≈ the sum of the solo
times, where jobs as threads of the server crawled side by side (a 15 s VQ run took 13.8 min
beside a VAE run).

    python bench/jobs.py --db data/latentviz.duckdb --dataset bbc-news [--epochs 2] [--out bench/results/jobs.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from latentviz import jobs, runs
from latentviz.store import Store, copy_workspace


def run_until_done(store: Store, queued: list[tuple[str, dict]]) -> float:
    start = time.perf_counter()
    ids = [jobs.submit(store, kind, params) for kind, params in queued]
    while True:
        rows = store.jobs().set_index("id").loc[ids]
        if set(rows["status"]) - {"queued", "running"}:
            failed = rows[~rows["status"].isin(["queued", "running", "done"])]
            if not failed.empty:
                raise SystemExit(f"a job failed: {failed.iloc[0]['error']}")
            if (rows["status"] == "done").all():
                return time.perf_counter() - start
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="bbc-news")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="bench/results/jobs.json")
    args = parser.parse_args()

    vq = ("train vq", jobs.training_params(runs.VQRun(dataset=args.dataset)))
    vae_run = runs.VAERun(dataset=args.dataset, epochs=args.epochs)
    vae = ("train vae", jobs.training_params(vae_run))
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "jobs.duckdb"
        copy_workspace(args.db, db)
        store = Store(db)
        worker = subprocess.Popen([sys.executable, "-m", "latentviz", "worker", "--db", str(db)])
        try:
            solo_vq = run_until_done(store, [vq])
            solo_vae = run_until_done(store, [vae])
            together = run_until_done(store, [vq, vae])
        finally:
            worker.terminate()
            worker.wait(60)
    result = {
        "cpus": os.cpu_count(),
        "vq_alone_s": round(solo_vq, 1),
        "vae_alone_s": round(solo_vae, 1),
        "sum_s": round(solo_vq + solo_vae, 1),
        "together_s": round(together, 1),
        "together_over_sum": round(together / (solo_vq + solo_vae), 3),
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
