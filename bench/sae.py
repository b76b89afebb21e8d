"""TopK SAE training: latentviz against SAELens on the same saved activations.

Same activations (a latentviz capture, e.g. SmolLM2 layer 8 over BBC News: run `latentviz capture`
first), same 90/10 token split, same width, k, batch, steps, Adam learning rate, seed and training
loop (latentviz's `train.fit`); only the SAE module differs: latentviz's `SparseAutoencoder`
(topk) or SAELens's `TopKTrainingSAE` (its `training_forward_pass`). Reported: training tokens/s,
and held-out L0 and FVU (Σ‖x − x̂‖² / Σ‖x − x̄‖²), with the ratios.

    pip install sae-lens            # the peer: for this benchmark only
    python bench/sae.py --db data/latentviz.duckdb [--capture ID] [--steps 150] [--width 4608] [--k 32]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from latentviz import activations, metrics, train
from latentviz.models.base import LatentModel, StepOutput
from latentviz.models.sae import SAEConfig, SparseAutoencoder
from latentviz.store import Store


class Peer(LatentModel):  # the loop's hooks do nothing for it
    """SAELens's TopK training SAE behind the StepOutput interface of latentviz's loop."""

    def __init__(self, d_in: int, d_sae: int, k: int):
        super().__init__()
        from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

        self.sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=k))
        self.step = 0

    def forward(self, x: torch.Tensor) -> StepOutput:
        from sae_lens.saes.sae import TrainStepInput

        out = self.sae.training_forward_pass(
            TrainStepInput(
                sae_in=x, coefficients={}, dead_neuron_mask=None, n_training_steps=self.step, is_logging_step=False
            )
        )
        return StepOutput(out.loss)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.sae.encode(x)
        return f, self.sae.decode(f)


def ours(d_in: int, d_sae: int, k: int) -> SparseAutoencoder:
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=d_sae, architecture="topk", k=k))
    sae.reconstruct = lambda x: (lambda f: (f, sae.decode(f)))(sae.encode(x))
    return sae


def run(name: str, build, x_train: torch.Tensor, x_held: torch.Tensor, args) -> dict:
    torch.manual_seed(0)
    model = build(x_train.shape[1], args.width, args.k)
    config = train.TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=10, eval_every=10**9)
    train.fit(
        model, x_train[: args.batch_size], config=train.TrainConfig(steps=2, batch_size=args.batch_size, lr=args.lr)
    )  # warm-up
    torch.manual_seed(0)
    model = build(x_train.shape[1], args.width, args.k)
    start = time.perf_counter()
    train.fit(model, x_train, config=config)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        f, x_hat = model.reconstruct(x_held)
    return {
        "sae": name,
        "tokens_per_s": args.steps * args.batch_size / seconds,
        "seconds": round(seconds, 1),
        "l0": metrics.l0(f.numpy()),
        "fvu": metrics.fraction_of_variance_unexplained(x_held.numpy(), x_hat.numpy()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="data/latentviz.duckdb")
    parser.add_argument("--capture", type=int, help="capture id (default: the newest)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--width", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--out", default="bench/results/sae.json")
    args = parser.parse_args()

    store = Store(args.db, read_only=True)
    capture_id = args.capture or int(store.captures()["id"].max())
    _, states = activations.load(store, capture_id)
    order = np.random.default_rng(0).permutation(len(states))
    cut = int(0.9 * len(states))
    x = torch.from_numpy(states)
    x_train, x_held = x[order[:cut]], x[order[cut:]]
    results = [run("latentviz", ours, x_train, x_held, args), run("sae-lens", Peer, x_train, x_held, args)]
    mine, peer = results
    report = {
        "capture": capture_id,
        "tokens": len(states),
        "settings": vars(args),
        "results": results,
        "speed_ratio": mine["tokens_per_s"] / peer["tokens_per_s"],
        "fvu_ratio": mine["fvu"] / peer["fvu"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
