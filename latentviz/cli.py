"""The `latentviz` command (also `python -m latentviz`): each subcommand is one pipeline step."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from latentviz import settings
from latentviz.errors import LatentvizError


def app_script() -> Path:
    """app.py: beside the package in a source checkout, else where the wheel installed it."""
    for folder in (Path(__file__).resolve().parent.parent, Path(sys.prefix) / "share" / "latentviz"):
        if (folder / "app.py").exists() and (folder / "views").is_dir():
            return folder / "app.py"
    raise LatentvizError(
        f"the app's scripts are missing: no app.py beside {Path(__file__).parent} or in {sys.prefix}/share/latentviz"
    )


class _Bar:
    """Adapts the pipeline's progress(done, total, message) callback to tqdm: one bar per stage,
    labelled by the stage it measures (a new message closes the last stage's bar)."""

    def __init__(self):
        self.bar, self.stage = None, None

    def __call__(self, done: int, total: int | None, message: str) -> None:
        from tqdm import tqdm

        if message != self.stage:
            self.close()
            self.stage = message
            self.bar = tqdm(total=total, desc=message, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        if total is not None and self.bar.total != total:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)  # redraws at most twice a second

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _store(args, read_only: bool = False):
    from latentviz.store import Store

    return Store(settings.db_path(args.db), read_only=read_only)


def cmd_ingest(args, spec) -> None:
    from latentviz import pipeline

    bar = _Bar()
    try:
        result = pipeline.ingest(
            _store(args),
            spec.source,
            name=spec.name,
            text_column=spec.text_column,
            label_column=spec.label_column,
            limit=spec.limit,
            progress=bar,
        )
    finally:
        bar.close()
    print(f"dataset {result.dataset!r}: {result.report.summary()}")


def cmd_encode(args, spec) -> None:
    from latentviz import pipeline

    bar = _Bar()
    try:
        encoding_id = pipeline.encode(
            _store(args),
            spec.dataset,
            backbone_name=spec.backbone,
            layer=spec.layer,
            batch_size=spec.batch_size,
            progress=bar,
        )
    finally:
        bar.close()
    print(f"encoding {encoding_id}: dataset {spec.dataset!r}, backbone {spec.backbone}")


def cmd_project(args, spec) -> None:
    from latentviz import pipeline

    store = _store(args)
    encoding_id = pipeline.find_encoding(store, spec.dataset, spec.backbone, spec.layer)
    bar = _Bar()
    try:
        projection_id = pipeline.project(store, encoding_id, method=spec.method, progress=bar)
    finally:
        bar.close()
    print(f"projection {projection_id}: {spec.method} of encoding {encoding_id}")


def cmd_train(args, run) -> None:
    """`train vq|vae|sae`: a new run from the flags (see runs.py), or --resume of a stopped one."""
    from latentviz import runs

    module = runs.FAMILIES[run.kind].fit
    if args.resume is None and not run.dataset:
        raise LatentvizError(f"train {run.kind} needs --dataset NAME (or --resume MODEL_ID)")
    bar = _Bar()
    try:
        if args.resume is not None:
            model_id = module.resume(_store(args), args.resume, progress=bar)
        else:
            model_id = module.train(_store(args), run, progress=bar)
    finally:
        bar.close()
    _print_figures(args, model_id)


def _print_figures(args, model_id: int) -> None:
    """A trained model's held-out figures as a short table (histograms and other lists stay in
    `info`), or all of them as JSON with --json."""
    figures = _store(args).model(model_id)["metrics"]
    if "warning" in figures:  # what the run's own curves say went wrong
        print(f"warning: {figures['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": model_id, **figures}, indent=2))
        return
    rows = [
        (name, value) for name, value in figures.items() if not isinstance(value, (dict, list)) and name != "warning"
    ]
    width = max((len(name) for name, _ in rows), default=0)
    print(f"model {model_id}: held-out figures (all of them: latentviz info)")
    for name, value in rows:
        print(f"  {name:<{width}}  {_number(value)}")


def _number(value) -> str:
    """A figure for people: 1,234 for counts, 4 significant digits for measurements."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _space(args, spec):
    from latentviz import latent_space

    return latent_space.open_space(_store(args), spec.model)


def cmd_decode(args, spec) -> None:
    space = _space(args, spec)
    print(space.reconstruct(spec.text, from_mean=not spec.sample, seed=spec.seed, **spec.decoding.options()))
    if spec.neighbours:
        mu, _ = space.latents([spec.text])
        print(space.neighbours(mu[0], spec.neighbours)[["distance", "label", "text"]].to_string(index=False))


def cmd_sample(args, spec) -> None:
    for text in _space(args, spec).sample(spec.n, seed=spec.seed, **spec.decoding.options()):
        print(text)


def cmd_interpolate(args, spec) -> None:
    space = _space(args, spec)
    options = spec.decoding.options()
    path, smoothness, _ = space.interpolate(
        spec.start, spec.end, spec.steps, spec.method, options.pop("method"), **options
    )
    for row in path.itertuples():
        print(f"{row.t:.2f}\t{row.text}")
    print(
        f"smoothness (mean word edit distance between neighbours, lower is smoother): {smoothness:.2f}; "
        f"between random dataset sentences: {space.smoothness_reference():.2f}"
    )


def cmd_traverse(args, spec) -> None:
    if spec.pca is not None:
        kind, index = "pca", spec.pca
    elif spec.labels:
        kind, index = "label", 0
    elif spec.dim is not None:
        kind, index = "dimension", spec.dim
    else:
        raise LatentvizError("say which direction to sweep: --dim D, --pca K or --labels A B")
    grid = _space(args, spec).traverse(spec.text, kind, [index], spec.labels, spec.steps, **spec.decoding.options())
    for row in grid.itertuples():
        print(f"{row.offset:+.1f}σ\t{row.text}")


def cmd_arithmetic(args, spec) -> None:
    space = _space(args, spec)
    for row in space.arithmetic(spec.text, spec.plus, spec.minus, spec.alpha, **spec.decoding.options()).itertuples():
        print(f"α={row.alpha:g}\t{row.text}")


def cmd_capture(args, run) -> None:
    from latentviz import fit

    bar = _Bar()
    try:
        capture_id = fit.sae.capture(_store(args), run, progress=bar)
    finally:
        bar.close()
    row = _store(args).captures().set_index("id").loc[capture_id]
    print(
        f"capture {capture_id}: {int(row['tokens']):,} tokens of {run.backbone} layer {int(row['layer'])} {run.site} "
        f"on {run.dataset!r}"
    )


def cmd_features(args, spec) -> None:
    from latentviz import features

    store = _store(args)
    bar = _Bar()
    try:
        built = features.build(store, spec.model, progress=bar)
        stats = features.statistics(store, spec.model)
    finally:
        bar.close()
    fired = stats[stats["fires"] > 0]
    parts = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in built["seconds"].items())
    print(
        f"SAE {spec.model}: {len(fired):,} of {len(stats):,} features fired over {built['tokens']:,} tokens; "
        f"every dashboard built in {sum(built['seconds'].values()):.1f} s ({parts}). Best labelled:"
    )
    best = features.best_labelled(stats, spec.show)
    print(best[["feature", "density", "max", "label", "label_confidence"]].to_string(index=False))


def cmd_text_features(args, spec) -> None:
    from latentviz import features

    found = features.text_record(_store(args, read_only=True), spec.model, spec.text)
    if spec.json:
        print(json.dumps(found))
        return
    for token in found["tokens"]:
        strongest = ", ".join(f"{f['feature']} {f['activation']:.2f} {f['label']}".strip() for f in token["features"])
        print(f"{token['token']!r:>16}  {strongest}")


def cmd_feature(args, spec) -> None:
    from latentviz import features

    found = features.feature_record(_store(args, read_only=True), spec.model, spec.feature)
    if spec.json:
        print(json.dumps(found))
        return
    print(
        f"feature {found['feature']}: {found['label'] or '(no label)'} · density {found['density']:.2e} · "
        f"max {found['max']:.2f}"
    )
    for example in [e for e in found["examples"] if e["bucket"] == -1][:5]:  # the top examples
        print(f"  {example['value']:6.2f}  {''.join(token for token, _ in example['tokens']).strip()}")
    for kind in ("promotes", "suppresses"):
        print(f"  {kind}: {', '.join(repr(token) for token, _ in found['links'][kind][:8])}")


def cmd_export_sae(args, spec) -> None:
    from latentviz import fit

    print(
        f"SAE {spec.model} written in the SAELens layout to {fit.sae.export_folder(_store(args, read_only=True), spec)}"
    )


def cmd_import_sae(args, spec) -> None:
    from latentviz import fit

    model_id, sae, where = fit.sae.import_folder(_store(args), spec)
    print(f"SAE {model_id}: {sae.config.architecture}, d_in {sae.config.d_in}, d_sae {sae.config.d_sae}, reads {where}")


def cmd_eval(args, spec) -> None:
    from latentviz import evals

    bar = _Bar()
    try:
        found = evals.evaluate(_store(args), spec, progress=bar)
    finally:
        bar.close()
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
            f"({figures['predicted_tokens']:,} predicted tokens, {figures['seconds']:.1f} s); 95% intervals from "
            f"{figures['resamples']:,} bootstrap resamples over the texts:"
        )
        for name in evals.core.WITH_INTERVALS:
            low, high = figures[f"{name}_interval"]
            print(f"  {name:<30} {figures[name]:.4f}  [{low:.4f}, {high:.4f}]")
        for name in ("ce_clean", "ce_sae", "ce_zero_ablation", "kl_div_with_ablation", "l0", "fvu"):
            print(f"  {name:<30} {figures[name]:.4f}")
    if "probing" in found:
        figures = found["probing"]
        print(
            f"Sparse probing, test accuracy (AUC) on {len(figures['tasks'])} tasks, {figures['train']} training and "
            f"{figures['test']} test texts each ({figures['seconds']:.1f} s):"
        )
        methods = list(figures["mean"])
        print(f"  {'task':<36}" + "".join(f"{method:>16}" for method in methods))
        for task, scores in {**figures["tasks"], "mean": figures["mean"]}.items():
            cells = "".join(f"{scores[m]['accuracy']:>9.3f} ({scores[m]['auc']:.2f})" for m in methods)
            print(f"  {task[:36]:<36}{cells}")
    if "absorption" in found:
        figures = found["absorption"]
        print(
            f"First-letter absorption on {len(figures['letters'])} letters, {figures['test_words']:,} test words "
            f"({figures['seconds']:.1f} s): mean absorption fraction {figures['mean_absorption_fraction']:.3f}, "
            f"full absorption rate {figures['mean_full_absorption_rate']:.3f}, "
            f"{figures['mean_main_latents']:.1f} main latents per letter"
        )
    if "labels" in found:
        figures = found["labels"]
        print(
            f"Labels scored ({figures['scorer']}) for {figures['scored']:,} of {figures['labelled']:,} labelled "
            f"features ({figures['seconds']:.1f} s): mean AUROC {figures['mean_score']:.3f}, median "
            f"{figures['median_score']:.3f}, {figures['good_share']:.0%} at {figures['good_at']} or more"
        )


def cmd_compare(args, spec) -> None:
    from latentviz import evals

    bar = _Bar()
    try:
        summary, features = evals.compare(_store(args), spec, progress=bar)
    finally:
        bar.close()
    if spec.json:
        print(json.dumps({**summary, "features": json.loads(features.to_json(orient="records"))}))
        return
    correlation = summary["pw_mcc_activations"]
    print(
        f"SAE {spec.a} ({summary['d_sae'][0]:,} features) against SAE {spec.b} ({summary['d_sae'][1]:,}): PW-MCC "
        f"{summary['pw_mcc_decoder']:.3f} on decoder cosine, "
        + (
            f"{correlation:.3f} on activations over {summary['tokens']:,} shared tokens"
            if correlation is not None
            else "no shared captured tokens for activations"
        )
        + f" ({summary['seconds']:.1f} s)"
    )
    print(
        "  "
        + " · ".join(f"{kind} {summary[kind]:,}" for kind in evals.matching.KINDS)
        + f" (matched: decoder cosine ≥ {spec.threshold:g})"
    )


def cmd_info(args, spec) -> None:
    print(json.dumps(_store(args, read_only=True).info(), indent=2, default=str))


def cmd_serve(args, spec) -> None:
    if spec.bundle:
        from latentviz import bundle

        if spec.allow_writes:
            raise LatentvizError("a bundle is served read-only: drop --allow-writes")
        args.db = str(bundle.check(Path(spec.bundle)))
        spec = replace(spec, read_only=True, bootstrap=False, worker=False)
        os.environ[settings.CACHE_ENV] = str(settings.user_cache() / "backbones")  # never inside the bundle
    db = settings.db_path(args.db).resolve()
    if spec.address not in settings.LOOPBACK and not (spec.read_only or spec.allow_writes):
        raise LatentvizError(
            f"serving on {spec.address} lets anyone who reaches it train, ingest and load models: add --read-only "
            "(a demo) or --allow-writes (you trust that network)"
        )
    if spec.read_only:
        _store(args, read_only=True)  # fail here, with a clear message, rather than in the browser
    env = {
        **os.environ,
        settings.DB_ENV: str(db),
        "LATENTVIZ_READ_ONLY": "1" if spec.read_only else "0",
        "LATENTVIZ_BOOTSTRAP": "1" if spec.bootstrap else "0",
        settings.WORKER_ENV: "1" if spec.worker and not spec.read_only else "0",
        settings.ALLOWED_HOSTS_ENV: ",".join(spec.allow_host or []),
        settings.TEXT_IN_URL_ENV: "1"
        if (spec.text_in_url if spec.text_in_url is not None else not spec.bundle)
        else "0",
    }
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.headless",
        "true",
        "--server.port",
        str(spec.port),
        "--server.address",
        spec.address,
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(settings.MAX_UPLOAD_BYTES // 2**20),
        # Serving, not developing: no file watcher (it would watch .venv too) and no deploy menu.
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
        # no full garbage collection after every script run: polling pages rerun often (see config.toml)
        "--runner.postScriptGC",
        "false",
    ]
    print(f"latentviz: serving {db} on http://{spec.address}:{spec.port}", file=sys.stderr)
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # become the server, so a signal to this process reaches it


def cmd_export(args, spec) -> None:
    from latentviz import bundle, static_site

    if (spec.out is None) == (spec.static is None):
        raise LatentvizError("say where to write: --out DIR (a bundle) or --static DIR (a static site), not both")
    store = _store(args, read_only=True)
    if spec.static:
        sizes = static_site.export(
            store, Path(spec.static), datasets=spec.datasets, model_ids=spec.models, max_mb=spec.max_mb
        )
        _print_sizes(sizes)
        print(f"latentviz: static site {spec.static}: serve the folder with any web server", file=sys.stderr)
        return
    manifest = bundle.export(store, Path(spec.out), datasets=spec.datasets, model_ids=spec.models)
    models = ", ".join(f"#{model['id']} {model['kind']}" for model in manifest["models"]) or "none"
    print(
        f"latentviz: bundle {spec.out}: datasets {', '.join(manifest['datasets'])}; {len(manifest['maps'])} map(s); "
        f"models {models}",
        file=sys.stderr,
    )
    _print_sizes(bundle.sizes(Path(spec.out)))
    print(f"serve it with: latentviz serve --bundle {spec.out}", file=sys.stderr)


def _print_sizes(sizes: dict[str, int]) -> None:
    for part, size in sizes.items():
        print(f"  {part:<32} {size / 2**20:>9,.1f} MB")


def cmd_worker(args, spec) -> None:
    from latentviz import jobs

    store = _store(args)
    print(f"latentviz: worker on {store.path}, {spec.jobs} job(s) at a time", file=sys.stderr, flush=True)
    if not jobs.serve_worker(store, at_once=spec.jobs, idle_exit=spec.idle_exit):
        raise LatentvizError(f"a worker already runs on {store.path}")


class Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default, taken from its spec (flags without one say nothing)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, "") else super()._get_help_string(action)


def _commands() -> list[tuple[str, object, object, str]]:
    """(name, spec, handler, help) of every command but `train`: its flags come from the spec."""
    from latentviz import runs, steps

    return [
        ("ingest", steps.Ingest(), cmd_ingest, "add a dataset: bbc-news or a .txt/.csv/.tsv/.jsonl/.parquet file"),
        ("encode", steps.Encode(), cmd_encode, "encode a dataset's texts with a backbone (resumes if interrupted)"),
        ("project", steps.Project(), cmd_project, "compute a 2-D map (UMAP or PCA) of an encoding"),
        ("decode", steps.Decode(), cmd_decode, "reconstruct a sentence with a trained VAE"),
        ("sample", steps.Sample(), cmd_sample, "decode sentences from the prior of a trained VAE"),
        ("interpolate", steps.Interpolate(), cmd_interpolate, "decode the path between two sentences in a VAE"),
        ("traverse", steps.Traverse(), cmd_traverse, "sweep a direction of a sentence's latent from -3σ to +3σ"),
        ("arithmetic", steps.Arithmetic(), cmd_arithmetic, "z(text) + α·(mean z|A − mean z|B), decoded"),
        ("capture", runs.SAERun(), cmd_capture, "capture a causal LM's layer activations over a dataset (for SAEs)"),
        ("features", steps.Features(), cmd_features, "build every feature dashboard of an SAE"),
        ("feature", steps.Feature(), cmd_feature, "show one feature's dashboard (--json for scripts)"),
        ("text-features", steps.TextFeatures(), cmd_text_features, "which SAE features fire on a text (--json)"),
        ("export-sae", steps.ExportSAE(), cmd_export_sae, "write a trained SAE in the SAELens layout"),
        ("import-sae", steps.ImportSAE(), cmd_import_sae, "add an SAE saved in the SAELens layout"),
        ("eval", steps.Evaluate(), cmd_eval, "evaluate an SAE: CE loss recovered, KL, shrinkage, with intervals"),
        ("compare", steps.Compare(), cmd_compare, "match two SAEs' features one to one (--json for every match)"),
        ("info", None, cmd_info, "print the workspace contents as one JSON object"),
        ("serve", steps.Serve(), cmd_serve, "start the app on this workspace"),
        ("export", steps.Export(), cmd_export, "write a bundle (a folder to serve read-only) or a static site"),
        ("worker", steps.Worker(), cmd_worker, "run the app's queued jobs (serve starts one when needed)"),
    ]


CAPTURE_FLAGS = (
    "dataset",
    "backbone",
    "layer",
    "site",
    "max_tokens",
    "keep_sinks",
    "prepend_bos",
)  # of the SAE run spec


def parser() -> argparse.ArgumentParser:
    from latentviz import flags, runs

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"workspace DuckDB file (default ${settings.DB_ENV} or {settings.DEFAULT_DB})")
    root = argparse.ArgumentParser(prog="latentviz", description="Look inside the latent spaces of language models.")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a latent model on a dataset's encodings")
    families = p.add_subparsers(dest="family", required=True)
    for family in runs.FAMILIES.values():
        p = families.add_parser(family.kind, parents=[common], help=family.help, formatter_class=Defaults)
        p.add_argument("--resume", type=int, metavar="MODEL_ID", help="continue a stopped run from its last checkpoint")
        p.add_argument("--json", action="store_true", help="print every held-out figure as one JSON object")
        flags.add_flags(p, family.run())
        p.set_defaults(run=cmd_train, spec=family.run())

    for name, spec, handler, help in _commands():
        p = sub.add_parser(name, parents=[common], help=help, formatter_class=Defaults)
        if name == "capture":
            flags.add_flags(p, spec, only=CAPTURE_FLAGS, required=("dataset",))
        elif spec is not None:
            flags.add_flags(p, spec)
        p.set_defaults(run=handler, spec=spec)
    return root


def main(argv: list[str] | None = None) -> int:
    from latentviz import flags

    args = parser().parse_args(argv)
    try:
        # a spec with the flags' values: every option is checked before any work starts
        spec = None if args.spec is None else flags.from_flags(args.spec, args)
        args.run(args, spec)
    except LatentvizError as error:
        print(f"latentviz {args.command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentviz {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
