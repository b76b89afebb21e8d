"""SAE defaults on activations they were not chosen on: for each activation distribution and architecture,
latentviz at its defaults (several seeds) against latentviz's own best from a learning-rate sweep and
SAELens's trainer swept the same way, on the same batches.

Distributions (`--distributions`; each keeps the capture's by-text 90/10 split, the held-out tenth is
what every figure is reported on, and a tenth of the training texts is set aside again as a validation
split, on which every choice is made):
  synthetic        latentviz.synthetic at its defaults, plus Gaussian noise: 2,048 known directions in
                   256 dimensions, 23 active per token; 200,000 training, 20,000 validation and 20,000
                   held-out tokens.
                   MCC (metrics.feature_recovery) against the true directions is reported with FVU.
  synthetic-big    the same features 40× larger, behind a shared offset of norm 500 (residual streams
                   carry one): a scale-dependent default shows here.
  capture:ID       a capture in the workspace (`latentviz capture`), named by its LM, layer and site.
Every SAE has 8 latents per input dimension and k = 32 (synthetic: 23, its true L0).

Sides, each at `--steps` steps of the run spec's batch size, with the run spec's seed for the batches:
  latentviz        runs.SAERun()'s model and training config, only the width, k and steps set: what
                   `latentviz train sae --steps N` gives; at its default learning rate for `--seeds`
                   seeds, and at each rate of `--lrs` for the first seed.
  SAELens          its SAETrainer with its TopK/BatchTopK/JumpReLU training SAEs at their own defaults
                   (bench/sae.py: peer_sae), at each rate of `--peer-lrs`, with normalize_activations
                   "expected_average_only_in" (its recommended setting for models of unknown scale);
                   jumprelu also at each initial θ of `--peer-thresholds`; its best again for the
                   other seeds. BatchTopK is measured as SAELens saves it (a JumpReLU with its learnt
                   threshold) and with the threshold set by latentviz's rule, for equal L0 (its own
                   EMA threshold lands far from k); the latter is its row, the former kept beside it.
The best of a sweep is chosen by validation FVU (jumprelu: among the runs within a quarter of k on
validation), and its other seeds are run at that setting, so best and defaults both report mean ±
spread over the seeds, on the held-out tokens that chose nothing.

SAELens lives in its own environment (see bench/sae.py):
    /tmp/peers/bin/python bench/sae_defaults.py --db WORKSPACE --distributions synthetic capture:2 \
        --out bench/results/sae_defaults.json
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import sae as peers  # noqa: E402  (bench/sae.py: SAELens's side)

from latentviz import activations, metrics, runs, synthetic, train  # noqa: E402
from latentviz.fit.common import held_out_split  # noqa: E402
from latentviz.fit.sae import reconstruction_figures  # noqa: E402
from latentviz.models.sae import SparseAutoencoder  # noqa: E402
from latentviz.store import Store  # noqa: E402

WIDTH_PER_DIMENSION = 8
SYNTHETIC_NOISE = 0.15  # per dimension, in feature units: about an eighth of the variance is noise
LRS = (3e-3, 8e-3, 2e-2)
PEER_LRS = (3e-3, 1e-2)
# jumprelu: SAELens's default initial θ and the point, in its normalised units, where about k of the
# first batch's pre-activations pass (bench/sae.py): from 0.01 it does not reach L0 near k in 100 steps
PEER_THRESHOLDS = (0.01, 0.25)


def distribution(name: str, store: Store | None) -> dict:
    """Training and held-out activations, the true directions where known, and k."""
    if name.startswith("synthetic"):
        spec = synthetic.Synthetic(noise=SYNTHETIC_NOISE)
        if name == "synthetic-big":
            spec = replace(spec, scale=40.0, offset=500.0)
        features = synthetic.Features(spec)
        return {
            "train": features.sample(200_000, seed=1),
            "validation": features.sample(20_000, seed=3),
            "held": features.sample(20_000, seed=2),
            "truth": features.directions,
            "k": round(spec.active),
            "about": f"synthetic: {spec}",
        }
    capture_id = int(name.split(":")[1])
    capture = store.capture(capture_id)
    text_ids, states = activations.load(store, capture_id)
    seed = runs.SAERun().training.seed
    train_rows, held_rows = held_out_split(text_ids, seed)
    fit_rows, validation_rows = held_out_split(text_ids[train_rows], seed + 1)
    x = torch.from_numpy(states)
    return {
        "train": x[train_rows[fit_rows]],
        "validation": x[train_rows[validation_rows]],
        "held": x[held_rows],
        "truth": None,
        "k": runs.SAERun().model.k,
        "about": f"{capture['backbone']} layer {capture['layer']} {capture['params'].get('hook', 'resid_post')}",
    }


def measure(data: dict, encode, decode, decoder: torch.Tensor) -> dict:
    """Held-out figures (what is reported) and validation FVU and L0 (what chooses)."""
    found = reconstruction_figures(data["held"], encode, decode, batch=4096)
    row = {name: found[name] for name in ("fvu", "l0", "dead_latents")}
    chosen_on = reconstruction_figures(data["validation"], encode, decode, batch=4096)
    row |= {"validation_fvu": chosen_on["fvu"], "validation_l0": chosen_on["l0"]}
    if data["truth"] is not None:
        row["mcc"] = metrics.feature_recovery(decoder.detach().numpy(), data["truth"].numpy())
    return row


def ours(data: dict, architecture: str, steps: int, seed: int, lr: float | None) -> dict:
    spec = runs.SAERun()
    d_in = data["train"].shape[1]
    model = replace(spec.model, d_in=d_in, d_sae=WIDTH_PER_DIMENSION * d_in, architecture=architecture, k=data["k"])
    training = replace(spec.training, steps=steps, eval_every=10**9, checkpoint_every=10**9)
    lr = runs.sae_lr(replace(spec, model=model)) if lr is None else lr
    torch.manual_seed(seed)
    sae = SparseAutoencoder(model)
    start = time.perf_counter()
    train.fit(sae, data["train"], config=replace(training, lr=lr))
    seconds = time.perf_counter() - start
    sae.eval()
    row = {"side": "latentviz", "lr": lr, "seed": seed, "seconds": round(seconds, 1)}
    return said(row | measure(data, sae.encode, sae.decode, sae.W_dec))


def peer(data: dict, architecture: str, steps: int, seed: int, lr: float, threshold: float | None = None) -> dict:
    """SAELens's trainer on the same batches (its own seed for the initialisation), measured as SAELens
    loads it back (fit() has folded its normalisation into the weights: it reads raw activations)."""
    from sae_lens import SAE

    d_in = data["train"].shape[1]
    torch.manual_seed(seed)
    sae = peers.peer_sae(architecture, d_in, WIDTH_PER_DIMENSION * d_in, data["k"], threshold, normalize=True)
    schedule = train.TrainConfig(steps=steps, batch_size=runs.SAERun().training.batch_size)
    seconds = peers.fit_peer(sae, data["train"], schedule, lr, normalize=True)
    row = {"side": "SAELens", "lr": lr, "seed": seed, "seconds": round(seconds, 1)}
    if architecture == "jumprelu":
        row["init_threshold"] = sae.cfg.jumprelu_init_threshold
    if architecture == "batchtopk":  # as saved, with its own threshold, kept beside the equal-L0 row
        with tempfile.TemporaryDirectory() as folder:
            sae.save_inference_model(folder)
            loaded = SAE.load_from_disk(folder)
        own = measure(data, loaded.encode, loaded.decode, loaded.W_dec)
        row |= {f"own_threshold_{name}": value for name, value in own.items()}
        sae.topk_threshold.fill_(peers.threshold_from_final_batches(sae, data["train"], schedule))
    sae.eval()
    with tempfile.TemporaryDirectory() as folder:
        sae.save_inference_model(folder)
        loaded = SAE.load_from_disk(folder)
    return said(row | measure(data, loaded.encode, loaded.decode, loaded.W_dec))


def said(row: dict) -> dict:
    """Each run's row on stderr as it ends: a long benchmark shows where it is."""
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def spread(rows: list[dict]) -> dict:
    """Mean and range over seeds of each figure."""
    out = {}
    for name in ("fvu", "l0", "dead_latents", "mcc", "validation_fvu", "own_threshold_fvu", "own_threshold_l0"):
        values = [row[name] for row in rows if name in row]
        if values:
            out[name] = statistics.fmean(values)
            out[f"{name}_range"] = [min(values), max(values)]
    chosen = {name: rows[0][name] for name in ("lr", "init_threshold") if name in rows[0]}
    return out | {"seeds": [row["seed"] for row in rows], **chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="the workspace holding the captures named capture:ID")
    parser.add_argument("--distributions", nargs="+", default=["synthetic"])
    parser.add_argument("--architectures", nargs="+", default=["topk"], choices=("topk", "batchtopk", "jumprelu"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lrs", type=float, nargs="*", default=list(LRS))
    parser.add_argument("--peer-lrs", type=float, nargs="*", default=list(PEER_LRS))
    parser.add_argument(
        "--peer-thresholds", type=float, nargs="+", default=list(PEER_THRESHOLDS), help="jumprelu: SAELens's initial θ"
    )
    parser.add_argument(
        "--sides",
        nargs="+",
        default=["latentviz", "SAELens"],
        choices=("latentviz", "SAELens"),
        help="run one side per process to use two cores (each writes its own --out)",
    )
    parser.add_argument("--out", default="bench/results/sae_defaults.json")
    args = parser.parse_args()
    store = Store(args.db, read_only=True) if args.db else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"steps": args.steps, "threads": torch.get_num_threads(), "results": []}
    first, others = args.seeds[0], args.seeds[1:]
    for name in args.distributions:
        data = distribution(name, store)
        for architecture in args.architectures:
            result = {"distribution": name, "about": data["about"], "architecture": architecture, "k": data["k"]}
            if "latentviz" in args.sides:
                defaults = [ours(data, architecture, args.steps, seed, None) for seed in args.seeds]
                result["defaults"] = spread(defaults)
                default_lr = defaults[0]["lr"]
                sweep = defaults[:1] + [
                    ours(data, architecture, args.steps, first, lr) for lr in args.lrs if lr != default_lr
                ]
                best = peers.best_of(sweep, architecture, data["k"], on="validation_")
                rest = [row for row in defaults[1:] if row["lr"] == best["lr"]] or [
                    ours(data, architecture, args.steps, seed, best["lr"]) for seed in others
                ]
                result["ours_best"] = spread([best, *rest])
                result["ours_sweep"] = sweep
            if "SAELens" in args.sides and args.peer_lrs:
                thresholds = args.peer_thresholds if architecture == "jumprelu" else [None]
                peer_sweep = [
                    peer(data, architecture, args.steps, first, lr, threshold)
                    for lr in args.peer_lrs
                    for threshold in thresholds
                ]
                peer_best = peers.best_of(peer_sweep, architecture, data["k"], on="validation_")
                peer_rest = [
                    peer(data, architecture, args.steps, seed, peer_best["lr"], peer_best.get("init_threshold"))
                    for seed in others
                ]
                result["saelens_best"] = spread([peer_best, *peer_rest])
                result["saelens_sweep"] = peer_sweep
            report["results"].append(result)
            print(json.dumps(result), flush=True)
            out.write_text(json.dumps(report, indent=2))  # each finished result kept, should a long run stop


if __name__ == "__main__":
    main()
