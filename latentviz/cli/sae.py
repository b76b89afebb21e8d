"""Commands on a trained SAE: its dashboards, text → features, the SAELens layout, evaluations."""

from __future__ import annotations

import json

from latentviz import numbers
from latentviz.cli.output import Bar, open_store
from latentviz.errors import LatentvizError


def cmd_features(args, spec) -> None:
    from latentviz import features

    store = open_store(args)
    with Bar() as bar:
        built = features.build(store, spec.model, progress=bar, engine=spec.engine)
        stats = features.statistics(store, spec.model)
    fired = stats[stats["fires"] > 0]
    parts = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in built["seconds"].items())
    print(
        f"SAE {spec.model}: {numbers.count(len(fired))} of {numbers.count(len(stats))} features fired over "
        f"{numbers.count(built['tokens'])} tokens; "
        f"every dashboard built in {sum(built['seconds'].values()):.1f} s ({parts}). Best labelled:"
    )
    best = features.best_labelled(stats, spec.show)
    print(best[["feature", "density", "max", "label", "label_confidence"]].to_string(index=False))


def cmd_text_features(args, spec) -> None:
    from latentviz import features

    found = features.text_record(open_store(args, read_only=True), spec.model, spec.text)
    if spec.json:
        print(json.dumps(found))
        return
    for token in found["tokens"]:
        strongest = ", ".join(
            f"{f['feature']} {numbers.figure(f['activation'])} {f['label']}".strip() for f in token["features"]
        )
        print(f"{token['token']!r:>16}  {strongest}")


def cmd_feature(args, spec) -> None:
    from latentviz import features

    found = features.feature_record(open_store(args, read_only=True), spec.model, spec.feature)
    if spec.json:
        print(json.dumps(found))
        return
    print(
        f"feature {found['feature']}: {found['label'] or '(no label)'} · density {numbers.density(found['density'])} · "
        f"max {numbers.figure(found['max'])}"
    )
    for example in [e for e in found["examples"] if e["bucket"] == -1][:5]:  # the top examples
        print(f"  {example['value']:6.2f}  {''.join(token for token, _ in example['tokens']).strip()}")
    for kind in ("promotes", "suppresses"):
        print(f"  {kind}: {', '.join(repr(token) for token, _ in found['links'][kind][:8])}")


def cmd_export_sae(args, spec) -> None:
    from latentviz import fit

    folder = fit.sae.export_folder(open_store(args, read_only=True), spec)
    print(f"SAE {spec.model} written in the SAELens layout to {folder}")


def cmd_import_sae(args, spec) -> None:
    from latentviz import fit

    model_id, sae, where = fit.sae.import_folder(open_store(args), spec)
    print(f"SAE {model_id}: {sae.config.architecture}, d_in {sae.config.d_in}, d_sae {sae.config.d_sae}, reads {where}")


def cmd_eval(args, spec) -> None:
    from latentviz import evals

    with Bar() as bar:
        found = evals.evaluate(open_store(args), spec, progress=bar)
    missing = {name: figures["not_measured"] for name, figures in found.items() if "not_measured" in figures}
    found = {name: figures for name, figures in found.items() if name not in missing}
    if spec.json:
        print(json.dumps(found))
    else:
        _print_evaluations(spec, found)
    if missing:
        raise LatentvizError("; ".join(f"{name} not measured: {why}" for name, why in missing.items()))


def _print_evaluations(spec, found: dict) -> None:
    from latentviz import evals

    if "core" in found:
        figures = found["core"]
        print(
            f"SAE {spec.model} on {figures['texts']} held-out texts of {figures['dataset']!r} "
            f"({numbers.count(figures['predicted_tokens'])} predicted tokens, {figures['seconds']:.1f} s); "
            "95% intervals from "
            f"{numbers.count(figures['resamples'])} bootstrap resamples over the texts:"
        )
        for name in evals.core.WITH_INTERVALS:
            low, high = figures[f"{name}_interval"]
            print(f"  {name:<30} {numbers.figure(figures[name])}  [{numbers.figure(low)}, {numbers.figure(high)}]")
        for name in ("ce_clean", "ce_sae", "ce_zero_ablation", "kl_div_with_ablation", "l0", "fvu"):
            print(f"  {name:<30} {numbers.figure(figures[name])}")
    if "probing" in found:
        figures = found["probing"]
        print(
            f"Sparse probing, test accuracy (AUC) on {len(figures['tasks'])} tasks, {figures['train']} training and "
            f"{figures['test']} test texts each ({figures['seconds']:.1f} s):"
        )
        methods = list(figures["mean"])
        print(f"  {'task':<36}" + "".join(f"{method:>16}" for method in methods))
        for task, scores in {**figures["tasks"], "mean": figures["mean"]}.items():
            cells = "".join(f"{scores[m]['accuracy']:>9.3f} ({numbers.figure(scores[m]['auc'])})" for m in methods)
            print(f"  {task[:36]:<36}{cells}")
    if "absorption" in found:
        figures = found["absorption"]
        print(
            f"First-letter absorption on {len(figures['letters'])} letters, "
            f"{numbers.count(figures['test_words'])} test words "
            f"({figures['seconds']:.1f} s): mean absorption fraction "
            f"{numbers.figure(figures['mean_absorption_fraction'])}, "
            f"full absorption rate {numbers.figure(figures['mean_full_absorption_rate'])}, "
            f"{numbers.figure(figures['mean_main_latents'])} main latents per letter"
        )
    if "labels" in found:
        figures = found["labels"]
        print(
            f"Labels scored ({figures['scorer']}) for {numbers.count(figures['scored'])} of "
            f"{numbers.count(figures['labelled'])} labelled "
            f"features ({figures['seconds']:.1f} s): mean AUROC {numbers.figure(figures['mean_score'])}, median "
            f"{numbers.figure(figures['median_score'])}, {numbers.share(figures['good_share'], 0)} at "
            f"{figures['good_at']} or more"
        )
    if "explanations" in found:
        _print_explanations(found["explanations"])


def _print_explanations(figures: dict) -> None:
    from latentviz.evals import explanations

    print(
        f"LLM explanations by {figures['explainer']} for {figures['features']} features, each scored on "
        f"{figures['per_side']} held-out windows where it fires and {figures['per_side']} where it does not "
        f"({figures['seconds']:.1f} s):"
    )
    print(f"  {'':<12}" + "".join(f"{name:>17}" for name in explanations.SCORE_NAMES))
    for kind in ("label", "explanation"):
        values = [figures[f"{kind}_{name}"] for name in explanations.SCORE_NAMES]
        print(f"  {kind:<12}" + "".join(f"{numbers.figure(v):>17}" for v in values))
    for shown in figures["shown"]:
        print(f"  feature {shown['feature']}: {shown['explanation'] or '(no explanation)'}")


def cmd_compare(args, spec) -> None:
    from latentviz import evals

    with Bar() as bar:
        summary, features = evals.compare(open_store(args), spec, progress=bar)
    if spec.json:
        print(json.dumps({**summary, "features": json.loads(features.to_json(orient="records"))}))
        return
    correlation = summary["pw_mcc_activations"]
    print(
        f"SAE {spec.a} ({numbers.count(summary['d_sae'][0])} features) against SAE {spec.b} "
        f"({numbers.count(summary['d_sae'][1])}): PW-MCC "
        f"{numbers.figure(summary['pw_mcc_decoder'])} on decoder cosine, "
        + (
            f"{numbers.figure(correlation)} on activations over {numbers.count(summary['tokens'])} shared tokens"
            if correlation is not None
            else "no shared captured tokens for activations"
        )
        + f" ({summary['seconds']:.1f} s)"
    )
    print(
        "  "
        + " · ".join(f"{kind} {numbers.count(summary[kind])}" for kind in evals.matching.KINDS)
        + f" (matched: decoder cosine ≥ {spec.threshold:g})"
    )
