"""Encoding throughput: `latentviz encode` against sentence-transformers' `encode`.

Same 2,000 built-in BBC News sentences, same packaged all-MiniLM-L6-v2 weights, same machine,
one process. Each side is warmed up, then timed three times in alternation (best of three is kept), so
neither gets a cold-cache disadvantage. "latentviz encode" is the whole pipeline step: reading
texts from a fresh workspace, encoding, and committing vectors to DuckDB.

    python bench/encode.py [--sentences 2000] [--batch-size 32]
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32, help="for both sides; latentviz's default")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    from latentviz import backbones, pipeline
    from latentviz.corpus import load_bbc_news
    from latentviz.store import Store

    texts = load_bbc_news(limit=args.sentences)[0]["text"].tolist()
    reference = SentenceTransformer(str(backbones.minilm_dir()), device="cpu")
    ours = backbones.load("minilm", cache=Path(tempfile.mkdtemp()), device=torch.device("cpu"))
    reference.encode(texts[:64], batch_size=args.batch_size)
    backbones.encode(ours, texts[:64], batch_size=args.batch_size)

    def time_reference():
        start = time.perf_counter()
        vectors = reference.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
        return time.perf_counter() - start, vectors

    def time_latentviz():
        with tempfile.TemporaryDirectory() as folder:
            store = Store(Path(folder) / "bench.duckdb")
            store.add_dataset("bench", "bench", __import__("pandas").DataFrame({"text": texts}))
            backbones._shared[("minilm", str(Path(folder) / "bench.cache"))] = ours  # loaded above, outside the timing
            start = time.perf_counter()
            encoding_id = pipeline.encode(store, "bench", backbone_name="minilm", batch_size=args.batch_size)
            seconds = time.perf_counter() - start
            return seconds, store.vectors(encoding_id)[1]

    def time_bare():  # the model alone, without the workspace: shows what the store costs
        start = time.perf_counter()
        backbones.encode(ours, texts, batch_size=args.batch_size)
        return time.perf_counter() - start

    reference_times, latentviz_times, bare_times = [], [], []
    for _ in range(3):
        seconds, reference_vectors = time_reference()
        reference_times.append(seconds)
        seconds, latentviz_vectors = time_latentviz()
        latentviz_times.append(seconds)
        bare_times.append(time_bare())

    cosine = (reference_vectors * latentviz_vectors).sum(1)
    result = {
        "sentences": len(texts),
        "batch_size": args.batch_size,
        "sentence_transformers_per_s": round(len(texts) / min(reference_times), 1),
        "latentviz_encode_per_s": round(len(texts) / min(latentviz_times), 1),
        "speedup": round(min(reference_times) / min(latentviz_times), 3),
        "model_only_per_s": round(len(texts) / min(bare_times), 1),
        "min_cosine": float(cosine.min()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        "{torch.get_num_threads()} threads",
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "encode.json").write_text(json.dumps(result, indent=2))
    assert np.all(cosine >= 0.9999), "vectors differ from sentence-transformers"


if __name__ == "__main__":
    main()
