"""Feature statistics and examples in bulk: how long the store takes, for every feature at once,
to compute per-feature statistics (density, mean, max, quantiles) and the top-10 plus interval
examples (10 buckets from 0 to each feature's max, 3 each), at the issue's scale: a 4,608-latent
TopK SAE (k = 32) over 1M tokens, i.e. 32M stored activations. The activations are synthetic
(random features with skewed popularity, random positive values): the SQL does the same work
whatever the values. Target: ≤ 60 s on 2 cores, loading included.

    python bench/features.py [--tokens 1000000] [--latents 4608] [--k 32]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from latentviz.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--latents", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--out", default="bench/results/features.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.tokens * args.k
    popularity = rng.pareto(1.2, args.latents) + 1e-3  # a few dense features, a long tail of rare ones
    features = rng.choice(args.latents, size=n, p=popularity / popularity.sum()).astype(np.int32)
    values = rng.gamma(2.0, 1.0, size=n).astype(np.float32)
    token = np.repeat(np.arange(args.tokens), args.k)
    text_ids, positions = token // 20, (token % 20).astype(np.int32)  # 20 tokens per text

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.duckdb")
        timings = {}
        start = time.perf_counter()
        store.set_feature_activations(1, text_ids, positions, features, values)
        timings["load"] = time.perf_counter() - start
        start = time.perf_counter()
        stats = store.feature_stats(1, args.tokens)
        timings["statistics"] = time.perf_counter() - start
        start = time.perf_counter()
        store.set_feature_examples(1, buckets=10, per_feature=10, per_bucket=3)  # chosen and stored, as build does
        timings["examples"] = time.perf_counter() - start
        examples = store.stored_examples(1)
    timings["total"] = sum(timings.values())
    report = {
        "tokens": args.tokens,
        "latents": args.latents,
        "k": args.k,
        "activations": n,
        "features_with_stats": len(stats),
        "example_rows": len(examples),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
