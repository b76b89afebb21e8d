"""Feature-dashboard build time: latentviz against SAEDashboard (the maintained sae_vis), for the
same SAE and the same tokens, in one run.

The SAE is one trained in a latentviz workspace (say the TopK 4,608 / k = 32 SAE on SmolLM2 layer 8
that `latentviz train sae` makes). The tokens are the first `--texts` texts of its dataset that are
at least `--length` tokens long, cut to exactly that many tokens (only texts whose cut decodes and
re-encodes to the same ids are used, so both tools see identical ids). Both tools start from token
ids and the loaded LM and SAE, and both leave out positions whose activation norm is over 4× the
median (attention sinks: latentviz's default, SAEDashboard's `ignore_high_activation_norm_multiple`).

Equal work: both build every feature's feature-centric dashboard, for every feature, before any is
opened.

  latentviz     capture the layer (LM forward), then `features.build`: encode with the SAE and store
                every non-zero activation in DuckDB; statistics and activation histograms; top-10 and
                10-interval examples (one per text); whole-word labels; top ± logit effects (blocked
                products through the final norm and the unembedding); nearest features by decoder
                cosine (blocked Gram products); co-occurring features (a sparse product). Each part is
                timed. Opening a feature afterwards is a lookup: its time is reported separately.
  SAEDashboard  SaeVisRunner.run for all features: LM forward, feature activations, top and
                quantile examples, histograms, logit tables, neighbours, for every feature.

SmolLM2 reaches SAEDashboard as a TransformerLens HookedSAETransformer built from the same weights;
the bench first checks that its blocks.{L-1}.hook_resid_post equals latentviz's layer L.

Peers live in their own environment (they pin other torch and transformers versions):
    python -m venv /tmp/peers && /tmp/peers/bin/pip install sae-lens
    /tmp/peers/bin/pip install --no-deps sae-dashboard eindex-callum matplotlib dataclasses-json
    # make latentviz importable there (a .pth file naming this repository and its .venv site-packages)
    /tmp/peers/bin/python bench/dashboards.py --db data/latentviz.duckdb --model 3 [--texts 400 --length 32]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentviz import activations, backbones, features, saelens, settings
from latentviz.models import base
from latentviz.store import Store


def bench_texts(tokenizer, texts: list[str], count: int, length: int) -> tuple[list[str], torch.Tensor]:
    """Texts cut to exactly `length` tokens whose cut round-trips through decode and encode."""
    kept, ids = [], []
    for text in texts:
        tokens = tokenizer(text)["input_ids"][:length]
        if len(tokens) < length:
            continue
        cut = tokenizer.decode(tokens)
        if tokenizer(cut)["input_ids"] == tokens:
            kept.append(cut)
            ids.append(tokens)
        if len(kept) == count:
            break
    return kept, torch.tensor(ids)


def timed_parts() -> dict[str, float]:
    """SAEDashboard's own time log stays empty; its two heavy parts are timed by wrapping them."""
    from sae_dashboard.feature_data_generator import FeatureDataGenerator
    from sae_dashboard.sequence_data_generator import SequenceDataGenerator

    parts: dict[str, float] = {}
    for owner, method, name in (
        (FeatureDataGenerator, "get_feature_data", "LM forward and feature activations"),
        (SequenceDataGenerator, "get_sequences_data", "top and quantile examples"),
    ):
        original = getattr(owner, method)

        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                parts[_name] = parts.get(_name, 0.0) + time.perf_counter() - start

        setattr(owner, method, timed)
    return parts


def hooked_smollm2(folder: Path, device: str):
    """SmolLM2 as a TransformerLens model (SAEDashboard's input) from latentviz's cached weights."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import convert_hf_model_config
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    config = HookedTransformerConfig(
        **{**convert_hf_model_config(str(folder)), "device": device, "dtype": torch.float32}
    )
    model = HookedSAETransformer(config, tokenizer=AutoTokenizer.from_pretrained(folder))
    # No weight processing: the activations must stay exactly the HF model's.
    model.load_and_process_state_dict(
        convert_llama_weights(hf, config),
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
    )
    return model.eval()


def saedashboard(lm, sae, texts, tokens, folder: Path, store) -> dict:
    """SAEDashboard's SaeVisRunner.run for every feature, on SmolLM2 as a TransformerLens model."""
    from sae_dashboard.sae_vis_data import SaeVisConfig
    from sae_dashboard.sae_vis_runner import SaeVisRunner
    from sae_lens import SAE

    layer, site = sae.config.layer, sae.config.site
    hook = saelens.hook_name(layer, site)
    hooked = hooked_smollm2(backbones.smollm2_weights(settings.cache_dir(store.path)), "cpu")
    _, reference = backbones.hidden_states(lm, texts[0], layer, site)
    _, cache = hooked.run_with_cache(tokens[:1], names_filter=hook)
    agreement = float((cache[hook][0] - torch.from_numpy(reference)).abs().max())
    assert agreement < 1e-3, f"TransformerLens {hook} differs from latentviz layer {layer} by {agreement}"
    theirs_sae = SAE.load_from_disk(saelens.export(sae, folder / "saelens", prepend_bos=False), device="cpu")
    if hasattr(theirs_sae.cfg, "rescale_acts_by_decoder_norm"):
        # SAEDashboard folds decoder norms, which SAELens allows a TopK SAE only with rescaling on;
        # our rows are unit norm, so folding is exact
        assert torch.allclose(theirs_sae.W_dec.norm(dim=1), torch.ones(1), atol=1e-4)
        theirs_sae.cfg.rescale_acts_by_decoder_norm = True
    config = SaeVisConfig(
        hook_point=hook,
        features=range(sae.config.d_sae),
        device="cpu",
        dtype="float32",
        ignore_high_activation_norm_multiple=activations.SINK_FACTOR,
    )
    parts = timed_parts()
    start = time.perf_counter()
    data = SaeVisRunner(config).run(encoder=theirs_sae, model=hooked, tokens=tokens)
    seconds = time.perf_counter() - start
    parts["logit tables, histograms, neighbours (the rest)"] = seconds - sum(parts.values())
    print(f"SAEDashboard: {seconds:.1f} s", flush=True)
    return {
        "transformer_lens_max_abs_diff": agreement,
        "saedashboard_seconds": round(seconds, 2),
        "saedashboard_steps": {k: round(v, 2) for k, v in parts.items()},
        "saedashboard_features": len(data.feature_data_dict),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the workspace holding the SAE")
    parser.add_argument("--model", type=int, required=True, help="the SAE's model id there")
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--open", type=int, default=20, help="features opened to time the per-feature parts")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True, help="run SAEDashboard too")
    parser.add_argument("--out", default="bench/results/dashboards.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    source = Store(args.db, read_only=True)
    row = source.trained_model(args.model, "sae", "SAE")
    sae = base.load(row["checkpoint"]).eval()
    layer, site = sae.config.layer, sae.config.site
    hook = saelens.hook_name(layer, site)

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.duckdb")
        lm = backbones.shared(row["backbone"], settings.cache_dir(store.path))  # converted and loaded before any timing
        texts, tokens = bench_texts(
            lm.tokenizer, source.texts(row["dataset"])["text"].tolist(), args.texts, args.length
        )
        store.add_dataset("bench", "bench", pd.DataFrame({"text": texts}))
        print(
            f"{len(texts)} texts × {args.length} tokens; SAE {args.model}: {sae.config.architecture} "
            f"{sae.config.d_sae}, {hook}",
            flush=True,
        )

        # -- latentviz ------------------------------------------------------------------------------
        timings = {}
        began = time.perf_counter()
        capture_id = activations.capture(store, "bench", row["backbone"], layer, site=site, max_tokens=10**9)
        timings["capture"] = time.perf_counter() - began
        model_id = store.add_model(
            "sae", "bench", "bench", row["backbone"], {"model": {}, "data": {"capture": capture_id}}
        )
        store.finish_model(model_id, str(base.save(sae, Path(folder) / "sae")), {})
        built = features.build(store, model_id)
        ours = time.perf_counter() - began
        timings.update(built["seconds"])
        stats = features.statistics(store, model_id)
        opened = stats[stats["fires"] > 0].sort_values("fires", ascending=False)["feature"].to_numpy()
        opened = opened[np.linspace(0, len(opened) - 1, args.open).astype(int)]
        per_feature = []
        for feature in opened:  # what the page reads to draw one feature
            start = time.perf_counter()
            features.dashboard(store, model_id, capture_id, int(feature))
            features.histogram(stats.set_index("feature").loc[int(feature)])
            per_feature.append(time.perf_counter() - start)
        print(f"latentviz: {ours:.1f} s  {json.dumps({k: round(v, 2) for k, v in timings.items()})}", flush=True)

        theirs = saedashboard(lm, sae, texts, tokens, Path(folder), store) if args.peer else {}

    report = {
        "tokens": int(tokens.numel()),
        "texts": len(texts),
        "length": args.length,
        "d_sae": sae.config.d_sae,
        "hook": hook,
        "torch_threads": torch.get_num_threads(),
        "latentviz_seconds": round(ours, 2),
        "latentviz_steps": {k: round(v, 2) for k, v in timings.items()},
        "latentviz_features_with_stats": int((stats["fires"] > 0).sum()),
        "latentviz_open_feature_median_seconds": round(statistics.median(per_feature), 3),
        "latentviz_open_feature_max_seconds": round(max(per_feature), 3),
        **theirs,
    }
    if theirs:
        report["speedup"] = round(theirs["saedashboard_seconds"] / ours, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
