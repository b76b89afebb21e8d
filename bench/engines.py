"""The Ray engine against the local engine on one machine: the same encode and capture, timed.

From a fresh workspace holding `--texts` BBC News sentences: MiniLM encodes them, and SmolLM2 captures
layer 8 (resid_post) of them, once on the local engine (this process, torch on every core) and once on
a Ray cluster started here with one worker per core (one torch thread each); each figure is texts/s or
tokens/s from the step's start to its last shard stored, and the cluster's start-up is timed apart.
What this measures is the engine's overhead and the gain of one process per core, not a cluster: on
one machine both engines share the same cores.

    python bench/engines.py [--texts 2000] [--out bench/results/engines.json]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from latentviz import activations, engines, pipeline
from latentviz.steps import Engine
from latentviz.store import Store


def both_steps(store: Store, name: str, engine: Engine, texts: int) -> list[dict]:
    """Encode with MiniLM, then capture SmolLM2's layer 8, on `engine`: seconds and rate of each."""
    start = time.perf_counter()
    pipeline.encode(store, "bbc-news", backbone_name="minilm", engine=engine)
    encoded = time.perf_counter() - start
    start = time.perf_counter()
    capture_id = activations.capture(store, "bbc-news", "smollm2", 8, max_tokens=10**9, engine=engine)
    captured = time.perf_counter() - start
    tokens = int(store.shards(capture_id)["tokens"].sum())
    return [
        {"step": "encode minilm", "engine": name, "seconds": round(encoded, 1), "texts/s": round(texts / encoded, 1)},
        {
            "step": "capture smollm2 layer 8",
            "engine": name,
            "seconds": round(captured, 1),
            "tokens/s": round(tokens / captured, 1),
            "tokens": tokens,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--out", default="bench/results/engines.json")
    args = parser.parse_args()
    import ray

    report = {"texts": args.texts, "rows": []}
    with tempfile.TemporaryDirectory() as folder:
        stores = {name: Store(Path(folder) / name / "workspace.duckdb") for name in ("local", "ray")}
        for store in stores.values():
            pipeline.ingest(store, "bbc-news", limit=args.texts)
        start = time.perf_counter()
        engines.start_cluster()
        report["cluster_start_seconds"] = round(time.perf_counter() - start, 1)
        for name, engine in (("local", Engine()), ("ray", Engine(engine="ray"))):
            report["rows"] += both_steps(stores[name], name, engine, args.texts)
            print(json.dumps(report["rows"][-2:]), flush=True)
        ray.shutdown()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
