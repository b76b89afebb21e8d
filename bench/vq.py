"""Codebook health and speed: latentviz's quantisers against vector-quantize-pytorch.

Same data (MiniLM embeddings of the built-in BBC News subset, 90/10 train/held-out split), same
sentence VQ model around the quantiser (encoder MLP → 4 codes of dimension 32 → decoder MLP),
same codebook size K = 256, same training loop, steps, batch, learning rate and seed, one process.
Only the quantiser differs. Held-out utilisation, perplexity and reconstruction MSE, and
training steps/s, are reported with the ratio to the peer configured the same way.

Dead codes: latentviz re-seeds a code whose EMA share of assignments falls under 3% of the fair
share 1/K. The peer's `threshold_ema_dead_code` compares each code's EMA *count* per batch with
the threshold; a batch here has 256 × 4 = 1,024 assignments over 256 codes, a fair share of 4, so
the equivalent threshold is 0.03 × 4 = 0.12. Its own README example uses 2 (half the fair share
here, about 17 times as eager): that setting is a second row. Residual VQ (4 stages) is reported
per stage, since code k of stage 1 and code k of stage 2 are different vectors.

    pip install vector-quantize-pytorch   # the peer: for this benchmark only
    python bench/vq.py [--db data/latentviz.duckdb] [--steps 2000]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn

from latentviz import pipeline, settings, train
from latentviz.fit import vq as fit_vq
from latentviz.fit.common import split_ids
from latentviz.models.vq import Quantized, SentenceVQ, VQConfig, _usage_stats
from latentviz.store import Store

K, D_CODE, GROUPS, STAGES, BATCH = 256, 32, 4, 4, 256
EQUIVALENT_THRESHOLD = 0.03 * BATCH * GROUPS / K  # our 3%-of-fair-share rule as an EMA count per batch


class Peer(nn.Module):
    """vector-quantize-pytorch's VectorQuantize (or, with `stages`, ResidualVQ) behind latentviz's
    quantiser interface."""

    def __init__(self, stages: int = 0, **options):
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ, VectorQuantize

        if stages:
            self.vq = ResidualVQ(dim=D_CODE, codebook_size=K, num_quantizers=stages, **options)
        else:
            self.vq = VectorQuantize(dim=D_CODE, codebook_size=K, **options)
        self.codebook_size = K

    def forward(self, z):
        quantized, indices, loss = self.vq(z[None])  # it wants (batch, sequence, dim)
        return Quantized(quantized[0], indices[0], loss.sum(), _usage_stats(indices[0], K))


def embeddings(db: str | None) -> torch.Tensor:
    """MiniLM vectors of the default BBC subset: from a workspace that has them, else computed."""
    store = Store(db or Path(tempfile.mkdtemp()) / "bench.duckdb")
    if not store.has_dataset(settings.BUILTIN_DATASET):
        pipeline.ingest(store, settings.BUILTIN_DATASET)
    encoding_id = pipeline.encode(store, settings.BUILTIN_DATASET)
    return torch.from_numpy(store.vectors(encoding_id)[1].copy())


def run(name: str, quantizer: nn.Module | None, config: VQConfig, x: torch.Tensor, training: train.TrainConfig) -> dict:
    torch.manual_seed(training.seed)
    model = SentenceVQ(config)
    if quantizer is not None:
        model.quantizer = quantizer
    train_rows, held_rows = split_ids(len(x), training.seed)
    start = time.perf_counter()
    train.fit(model, x[train_rows], config=training)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        held = model.quantize(x[held_rows]).indices.numpy()
        reconstruction = torch.nn.functional.mse_loss(model.reconstruct(x[held_rows]), x[held_rows]).item()
    # the library's figures (fit.vq.usage_figures), each code a row as its own held-out figures count them
    usage = fit_vq.usage_figures(held.reshape(len(held), 1, -1), K)
    row = {
        "quantizer": name,
        "utilisation": round(usage["utilisation"], 4),
        "perplexity": round(usage["perplexity"], 1),
        "perplexity_over_K": round(usage["perplexity"] / K, 3),
        "reconstruction_mse": round(reconstruction, 6),
        "steps_per_s": round(training.steps / seconds, 1),
    }
    stages = held.shape[1] if held.ndim > 1 else 1
    if stages > 1:  # residual VQ: each stage's own codebook
        row["per_stage"] = [
            {
                key: round(usage[f"stage{s}_{key}"], 4 if key == "utilisation" else 1)
                for key in ("utilisation", "perplexity")
            }
            for s in range(1, stages + 1)
        ]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help="a workspace with bbc-news encoded by minilm (default: build one in a temp folder)"
    )
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    x = embeddings(args.db)
    training = train.TrainConfig(
        steps=args.steps, batch_size=BATCH, lr=1e-3, eval_every=args.steps, checkpoint_every=args.steps
    )
    shape = {"codebook_size": K, "d_code": D_CODE, "groups": GROUPS, "d_in": x.shape[1]}
    rows = [
        run(
            "latentviz vq-ema (plain)",
            None,
            VQConfig(quantizer="vq-ema", kmeans_init=False, restart_dead=False, **shape),
            x,
            training,
        ),
        run(
            "peer VectorQuantize (plain, decay 0.99)",
            Peer(decay=0.99, commitment_weight=0.25),
            VQConfig(quantizer="vq-ema", **shape),
            x,
            training,
        ),
        run(
            "latentviz vq-ema at its defaults (k-means init + restarts)",
            None,
            VQConfig(quantizer="vq-ema", **shape),
            x,
            training,
        ),
        run(
            f"peer VectorQuantize + k-means init + dead-code threshold {EQUIVALENT_THRESHOLD:g} (= ours)",
            Peer(decay=0.99, commitment_weight=0.25, kmeans_init=True, threshold_ema_dead_code=EQUIVALENT_THRESHOLD),
            VQConfig(quantizer="vq-ema", **shape),
            x,
            training,
        ),
        run(
            "peer VectorQuantize + k-means init + dead-code threshold 2 (its README's, ~17x as eager here)",
            Peer(decay=0.99, commitment_weight=0.25, kmeans_init=True, threshold_ema_dead_code=2),
            VQConfig(quantizer="vq-ema", **shape),
            x,
            training,
        ),
        run(
            f"latentviz rvq ({STAGES} stages) + k-means init + restarts",
            None,
            VQConfig(quantizer="rvq", stages=STAGES, kmeans_init=True, restart_dead=True, **shape),
            x,
            training,
        ),
        run(
            f"peer ResidualVQ ({STAGES} stages) + k-means init + dead-code threshold {EQUIVALENT_THRESHOLD:g}",
            Peer(
                stages=STAGES,
                decay=0.99,
                commitment_weight=0.25,
                kmeans_init=True,
                threshold_ema_dead_code=EQUIVALENT_THRESHOLD,
            ),
            VQConfig(quantizer="rvq", stages=STAGES, **shape),
            x,
            training,
        ),
        run(
            "latentviz vq + rotation trick + k-means init + restarts",
            None,
            VQConfig(quantizer="vq", rotation_trick=True, kmeans_init=True, restart_dead=True, **shape),
            x,
            training,
        ),
    ]
    for ours, peer in ((rows[0], rows[1]), (rows[2], rows[3]), (rows[2], rows[4]), (rows[5], rows[6])):
        peer["vs_ours"] = ours["quantizer"]
        peer["our_speed_ratio"] = round(ours["steps_per_s"] / peer["steps_per_s"], 2)
        peer["our_reconstruction_ratio"] = round(ours["reconstruction_mse"] / peer["reconstruction_mse"], 3)
    result = {
        "texts": len(x),
        "K": K,
        "steps": args.steps,
        "machine": f"{os.cpu_count()} cores, torch {torch.__version__}",
        "runs": rows,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "vq.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
