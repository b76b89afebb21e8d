"""SAE training: latentviz at its defaults against SAELens's own trainer, on the same activations.

Equal work: the same capture (`latentviz capture`; SmolLM2 layer 8 over BBC News in the README),
the same by-text 90/10 split (fit.common.held_out_split), the very same batches in the same order
(train.batch_at), the same batch size, steps, width and k.

  latentviz  `runs.SAERun()`'s model and training config with only the step count changed: what a
             user gets from `latentviz train sae --steps N`.
  SAELens    its `SAETrainer` with `TopKTrainingSAE` / `BatchTopKTrainingSAE` / `JumpReLUTrainingSAE`
             at their own defaults (decoder rows at norm 0.1 with rescale_acts_by_decoder_norm, AuxK
             over its dead-latent mask, gradient clipping, constant learning rate; JumpReLU with its
             quadratic L0 penalty around k, as latentviz's default), at its default
             learning rate (3e-4) and at each rate of a sweep; the best by held-out FVU is its row.
             JumpReLU learns its L0, so its sweep also crosses SAELens's initial θ (--peer-thresholds),
             optionally with its normalize_activations="expected_average_only_in" (--peer-normalize),
             and its best is the lowest FVU among runs within a quarter of k (best_of).
  same init  SAELens's trainer started from latentviz's initial weights (unit decoder rows, b_dec at
             the geometric median), at SAELens's best rate: the method apart from the initialisation.

Reported per row: training tokens/s, and on the held-out tokens FVU (Σ‖x − x̂‖² / Σ‖x − x̄‖²), L0
and dead latents (never firing on them). SAELens rows are measured on what SAELens itself loads back
(`save_inference_model` → `SAE.load_from_disk`); the same folder, and SAELens's trainer checkpoint
(`save_model`, decoder norms not folded), are imported with latentviz's `saelens.read`, and our SAE
exported with `saelens.export` is loaded by SAELens: each FVU is reported beside the original.

SAELens lives in its own environment (it pins other versions; see bench/dashboards.py for the setup):
    /tmp/peers/bin/python bench/sae.py --db data/latentviz.duckdb --capture 1 --steps 100 --out bench/results/sae.json
    /tmp/peers/bin/python bench/sae.py ... --steps 2000 --peer-lrs 3e-4 3e-3 --no-same-init  # the long run
    /tmp/peers/bin/python bench/sae.py ... --steps 100 --architectures jumprelu --peer-lrs 1e-3 3e-3 1e-2
    /tmp/peers/bin/python bench/sae.py ... --steps 100 --architectures jumprelu --k 120 --peer-lrs  # ours at L0 ≈ 120
    /tmp/peers/bin/python bench/sae.py ... --steps 100 --architectures jumprelu --peer-lrs 3e-3 1e-2 3e-2 \
        --peer-thresholds 0.01 0.25 --peer-normalize --no-ours --no-same-init  # θ in normalised units
"""

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from latentviz import activations, runs, saelens, train
from latentviz.fit import sae as fit_sae
from latentviz.fit.common import held_out_split
from latentviz.models.sae import SparseAutoencoder
from latentviz.store import Store

PEER_LRS = (3e-4, 1e-3, 3e-3, 1e-2)
PEER_DEFAULT_LR = 3e-4  # sae_lens.config.SAETrainerConfig.lr
# jumprelu: SAELens's default θ (0.01) and one near where k of d_sae first-batch pre-activations pass
# under its initialisation (1.27 on SmolLM2 layer 8, whose ‖x‖ is about 115): from 0.01, with θ
# moving about lr a step, 100 steps cannot reach an L0 near k. With --peer-normalize θ is in the
# normalised units (x scaled by √576 / 115 ≈ 0.21): the same point is 0.25 there.
PEER_THRESHOLDS = (0.01, 1.0)
NORM_BATCHES = 10  # SAELens's estimate of E‖x‖ for normalize_activations (its default, 1,000, is for streams)
HOOK, MODEL = "blocks.7.hook_resid_post", "HuggingFaceTB/SmolLM2-135M-Instruct"


def figures(x: torch.Tensor, encode, decode) -> dict:
    """The library's held-out figures (fit.sae.reconstruction_figures) that the tables report."""
    found = fit_sae.reconstruction_figures(x, encode, decode, batch=4096)
    return {name: found[name] for name in ("fvu", "l0", "dead_latents")}


def ours(architecture: str, steps: int, x_train, x_held, batch_size: int, k: int) -> tuple[dict, SparseAutoencoder]:
    run = runs.SAERun()
    model = replace(run.model, d_in=x_train.shape[1], architecture=architecture, k=k)
    run = replace(run, model=model)
    config = replace(
        run.training, steps=steps, batch_size=batch_size, lr=runs.sae_lr(run), eval_every=10**9, checkpoint_every=10**9
    )
    torch.manual_seed(config.seed)
    sae = SparseAutoencoder(model)
    start = time.perf_counter()
    train.fit(sae, x_train, config=config)
    seconds = time.perf_counter() - start
    sae.eval()
    row = {"sae": "latentviz (defaults)", "lr": config.lr, "steps": steps, "seconds": round(seconds, 1)}
    row["tokens_per_s"] = round(steps * batch_size / seconds)
    return row | figures(x_held, sae.encode, sae.decode), sae


def peer_sae(architecture: str, d_in: int, d_sae: int, k: int, threshold: float | None = None, normalize=False):
    import sae_lens
    from sae_lens.saes.sae import SAEMetadata

    given = {"metadata": SAEMetadata(hook_name=HOOK, model_name=MODEL)}
    if normalize:
        given["normalize_activations"] = "expected_average_only_in"
    if architecture == "jumprelu":
        # its quadratic L0 penalty around the same target as ours (k): both aim at the same L0
        if threshold is not None:
            given["jumprelu_init_threshold"] = threshold
        config = sae_lens.JumpReLUTrainingSAEConfig(
            d_in=d_in, d_sae=d_sae, jumprelu_sparsity_loss_mode="quadratic", target_l0=k, **given
        )
        return sae_lens.JumpReLUTrainingSAE(config)
    name = {"topk": "TopK", "batchtopk": "BatchTopK"}[architecture]
    config = getattr(sae_lens, f"{name}TrainingSAEConfig")(d_in=d_in, d_sae=d_sae, k=k, **given)
    return getattr(sae_lens, f"{name}TrainingSAE")(config)


def peer(
    architecture,
    steps,
    lr,
    x_train,
    x_held,
    batch_size,
    k,
    d_sae,
    init=None,
    label="SAELens",
    threshold=None,
    normalize=False,
) -> dict:
    from sae_lens import SAE

    torch.manual_seed(0)
    sae = peer_sae(architecture, x_train.shape[1], d_sae, k, threshold, normalize)
    if init is not None:
        with torch.no_grad():
            for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
                getattr(sae, name).copy_(getattr(init, name))
            if architecture == "jumprelu":  # ours per latent, in the pre-activations' units as SAELens's
                sae.threshold.copy_(init.jump_threshold())
    schedule = train.TrainConfig(steps=steps, batch_size=batch_size, seed=runs.SAERun().training.seed)
    seconds = fit_peer(sae, x_train, schedule, lr, normalize)
    row = {"sae": label, "lr": lr, "steps": steps, "seconds": round(seconds, 1), "normalize_activations": normalize}
    if architecture == "jumprelu" and init is None:
        row["init_threshold"] = sae.cfg.jumprelu_init_threshold
    row["tokens_per_s"] = round(steps * batch_size / seconds)
    if architecture == "batchtopk":  # its threshold (an EMA from 0) again, the way latentviz sets its own
        row |= peer_threshold_from_final_batches(sae, x_train, schedule, x_held)
    with tempfile.TemporaryDirectory() as folder:
        sae.save_inference_model(Path(folder) / "inference")
        loaded = SAE.load_from_disk(Path(folder) / "inference")
        row |= figures(x_held, loaded.encode, loaded.decode)
        imported, where = saelens.read(Path(folder) / "inference")
        row["imported_inference_fvu"] = figures(x_held, imported.encode, imported.decode)["fvu"]
        row["imported_reads"] = str(where)
        sae.save_model(Path(folder) / "checkpoint")  # the trainer's own layout: decoder norms not folded
        sae.eval()
        row["checkpoint_fvu"] = figures(x_held, sae.encode, sae.decode)["fvu"]  # SAELens on its training SAE
        imported, _ = saelens.read(Path(folder) / "checkpoint")
        row["imported_checkpoint_fvu"] = figures(x_held, imported.encode, imported.decode)["fvu"]
    return row


def fit_peer(sae, x_train: torch.Tensor, schedule: train.TrainConfig, lr: float, normalize: bool) -> float:
    """Train a SAELens training SAE with its own SAETrainer on the schedule's batches (train.batch_at, as
    ours); returns the seconds it took."""
    from sae_lens import SAETrainer
    from sae_lens.config import SAETrainerConfig

    # with normalize_activations, its trainer first reads NORM_BATCHES batches for E‖x‖ (the first of
    # the same schedule), scales every batch to E‖x‖ = √d_in, and folds the factor into the weights after
    estimating = range(NORM_BATCHES if normalize else 0)
    steps = range(schedule.steps)
    batches = (x_train[train.batch_at(step, len(x_train), schedule)] for step in (*estimating, *steps))
    config = SAETrainerConfig(
        total_training_samples=schedule.steps * schedule.batch_size,
        train_batch_size_samples=schedule.batch_size,
        lr=lr,
        lr_end=lr / 10,  # as its runner config sets it; unused by the constant schedule
        n_batches_for_norm_estimate=NORM_BATCHES,
    )
    trainer = SAETrainer(config, sae, batches)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def threshold_from_final_batches(sae, x_train, schedule) -> float:
    """The mean of the smallest kept activation of SAELens's BatchTopK over the final tenth of the
    training batches, at its final weights: latentviz's own threshold rule, giving an L0 near k."""
    final = range(schedule.steps - max(1, schedule.steps // 10), schedule.steps)
    smallest = []
    sae.train()
    with torch.no_grad():
        for step in final:
            kept = sae.encode_with_hidden_pre(x_train[train.batch_at(step, len(x_train), schedule)])[0]
            smallest.append(kept[kept > 0].min())
    return float(torch.stack(smallest).mean())


def peer_threshold_from_final_batches(sae, x_train, schedule, x_held) -> dict:
    """SAELens's BatchTopK with its inference threshold replaced by latentviz's rule
    (threshold_from_final_batches), so the two compare at equal L0. Its own threshold is put back after."""
    from sae_lens import SAE

    own = sae.topk_threshold.clone()
    with tempfile.TemporaryDirectory() as folder:
        sae.topk_threshold.fill_(threshold_from_final_batches(sae, x_train, schedule))
        sae.save_inference_model(folder)
        loaded = SAE.load_from_disk(folder)
        sae.topk_threshold.copy_(own)
        refit = figures(x_held, loaded.encode, loaded.decode)
    return {"threshold_refit_fvu": refit["fvu"], "threshold_refit_l0": refit["l0"]}


def best_of(sweep: list[dict], architecture: str, k: int, on: str = "") -> dict:
    """The lowest FVU (`on` names the split: its figures are row[on + "fvu"], row[on + "l0"]); for
    jumprelu, whose L0 is learnt, among the runs within a quarter of the target k (a denser SAE
    reconstructs better: FVU compares only at equal L0), else the run nearest k."""
    if architecture == "jumprelu":
        near = [row for row in sweep if abs(row[on + "l0"] - k) <= k / 4]
        if not near:
            return min(sweep, key=lambda row: abs(row[on + "l0"] - k))
        sweep = near
    return min(sweep, key=lambda row: row[on + "fvu"])


def exported_in_saelens(sae: SparseAutoencoder, x_held) -> float:
    from sae_lens import SAE

    with tempfile.TemporaryDirectory() as folder:
        loaded = SAE.load_from_disk(saelens.export(sae, folder, prepend_bos=False))
        return figures(x_held, loaded.encode, loaded.decode)["fvu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="data/latentviz.duckdb")
    parser.add_argument("--capture", type=int, help="capture id (default: the newest)")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--architectures", nargs="+", default=["topk"], choices=("topk", "batchtopk", "jumprelu"))
    parser.add_argument("--k", type=int, help="active latents, or jumprelu's target L0 (default: the run spec's)")
    parser.add_argument("--peer-lrs", type=float, nargs="*", default=list(PEER_LRS))
    parser.add_argument(
        "--peer-thresholds", type=float, nargs="+", default=list(PEER_THRESHOLDS), help="jumprelu: SAELens's initial θ"
    )
    parser.add_argument(
        "--peer-normalize",
        action="store_true",
        help="SAELens with normalize_activations='expected_average_only_in' (E‖x‖ scaled to √d_in in training)",
    )
    parser.add_argument("--same-init", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ours", action=argparse.BooleanOptionalAction, default=True, help="train latentviz's side")
    parser.add_argument("--out", default="bench/results/sae.json")
    args = parser.parse_args()
    if args.peer_normalize and args.same_init and args.peer_lrs:
        # the same-init row copies our weights, which are in the activations' own units
        parser.error("--peer-normalize cannot start SAELens from our raw-unit weights: add --no-same-init")

    store = Store(args.db, read_only=True)
    capture_id = args.capture or int(store.captures()["id"].max())
    capture = store.capture(capture_id)
    text_ids, states = activations.load(store, capture_id)
    train_rows, held_rows = held_out_split(text_ids, runs.SAERun().training.seed)
    x = torch.from_numpy(states)
    x_train, x_held = x[train_rows], x[held_rows]
    spec = runs.SAERun()
    batch, k, d_sae = spec.training.batch_size, args.k or spec.model.k, spec.model.d_sae
    rows = []
    for architecture in args.architectures:
        for steps in args.steps:
            if args.ours:
                mine, sae = ours(architecture, steps, x_train, x_held, batch, k)
                mine["architecture"] = architecture
                mine["exported_then_loaded_in_saelens_fvu"] = exported_in_saelens(sae, x_held)
                rows.append(mine)
                print(json.dumps(mine), flush=True)
            sweep = []
            thresholds = args.peer_thresholds if architecture == "jumprelu" else [None]
            for lr in args.peer_lrs:
                for threshold in thresholds:
                    row = peer(
                        architecture,
                        steps,
                        lr,
                        x_train,
                        x_held,
                        batch,
                        k,
                        d_sae,
                        threshold=threshold,
                        normalize=args.peer_normalize,
                    )
                    sweep.append(row | {"architecture": architecture})
                    print(json.dumps(sweep[-1]), flush=True)
            if not sweep:
                continue
            best = best_of(sweep, architecture, k)
            for row in sweep:
                role = "best of the sweep" if row is best else "swept"
                row["role"] = role + (", its default lr" if row["lr"] == PEER_DEFAULT_LR else "")
            rows += sweep
            if args.same_init:
                torch.manual_seed(spec.training.seed)
                init = SparseAutoencoder(replace(spec.model, d_in=x.shape[1], architecture=architecture, k=k))
                init._init_from(x_train[train.batch_at(0, len(x_train), replace(spec.training, steps=steps))])
                same = peer(
                    architecture, steps, best["lr"], x_train, x_held, batch, k, d_sae, init, "SAELens, our init"
                )
                rows.append(same | {"architecture": architecture, "role": "same init"})
                print(json.dumps(rows[-1]), flush=True)
    report = {
        "capture": {"id": capture_id, "layer": int(capture["layer"]), "tokens": len(states), **capture["params"]},
        "split": {"train_tokens": len(train_rows), "held_out_tokens": len(held_rows)},
        "batch_size": batch,
        "d_sae": d_sae,
        "k": k,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
