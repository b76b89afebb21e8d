"""The `latentviz` command (also `python -m latentviz`): each subcommand is one pipeline step."""

from __future__ import annotations

import argparse
import json
import os
import sys
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

    return Store(settings.db_path(args.db), read_only=read_only or getattr(args, "read_only", False))


def cmd_ingest(args) -> None:
    from latentviz import pipeline

    bar = _Bar()
    try:
        result = pipeline.ingest(
            _store(args),
            args.source,
            name=args.name,
            text_column=args.text_column,
            label_column=args.label_column,
            limit=args.limit,
            progress=bar,
        )
    finally:
        bar.close()
    print(f"dataset {result.dataset!r}: {result.report.summary()}")


def cmd_encode(args) -> None:
    from latentviz import pipeline

    bar = _Bar()
    try:
        encoding_id = pipeline.encode(
            _store(args),
            args.dataset,
            backbone_name=args.backbone,
            layer=args.layer,
            batch_size=args.batch_size,
            progress=bar,
        )
    finally:
        bar.close()
    print(f"encoding {encoding_id}: dataset {args.dataset!r}, backbone {args.backbone}")


def cmd_project(args) -> None:
    from latentviz import pipeline

    store = _store(args)
    encoding_id = pipeline.find_encoding(store, args.dataset, args.backbone, args.layer)
    bar = _Bar()
    try:
        projection_id = pipeline.project(store, encoding_id, method=args.method, progress=bar)
    finally:
        bar.close()
    print(f"projection {projection_id}: {args.method} of encoding {encoding_id}")


def _train(family: str, args) -> None:
    """`train vq|vae|sae`: a new run from the flags (see runs.py), or --resume of a stopped one."""
    from latentviz import fit, runs

    module = fit.FAMILIES[family]
    run = runs.from_flags(runs.RUNS[family](), args)  # checks the options before any work starts
    if args.resume is None and not run.dataset:
        raise LatentvizError(f"train {family} needs --dataset NAME (or --resume MODEL_ID)")
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
    if args.json:
        print(json.dumps({"model": model_id, **figures}, indent=2))
        return
    rows = [(name, value) for name, value in figures.items() if not isinstance(value, (dict, list))]
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


def _space(args):
    from latentviz import latent_space

    return latent_space.open_space(_store(args), args.model)


def _decoding(args) -> dict:
    return {"method": args.decoding, "beam": args.beam, "temperature": args.temperature}


def cmd_decode(args) -> None:
    space = _space(args)
    options = _decoding(args)
    print(space.reconstruct(args.text, options.pop("method"), from_mean=not args.sample, seed=args.seed, **options))
    if args.neighbours:
        mu, _ = space.latents([args.text])
        print(space.neighbours(mu[0], args.neighbours)[["distance", "label", "text"]].to_string(index=False))


def cmd_sample(args) -> None:
    options = _decoding(args)
    for text in _space(args).sample(args.n, options.pop("method"), seed=args.seed, **options):
        print(text)


def cmd_interpolate(args) -> None:
    space = _space(args)
    path, smoothness, _ = space.interpolate(args.start, args.end, args.steps, args.method, args.decoding)
    for row in path.itertuples():
        print(f"{row.t:.2f}\t{row.text}")
    print(
        f"smoothness (mean word edit distance between neighbours, lower is smoother): {smoothness:.2f}; "
        f"between random dataset sentences: {space.smoothness_reference():.2f}"
    )


def cmd_traverse(args) -> None:
    if args.pca is not None:
        kind, index, labels = "pca", args.pca, None
    elif args.labels:
        kind, index, labels = "label", 0, tuple(args.labels)
    elif args.dim is not None:
        kind, index, labels = "dimension", args.dim, None
    else:
        raise LatentvizError("say which direction to sweep: --dim D, --pca K or --labels A B")
    for row in _space(args).traverse(args.text, kind, [index], labels, args.steps, args.decoding).itertuples():
        print(f"{row.offset:+.1f}σ\t{row.text}")


def cmd_arithmetic(args) -> None:
    alphas = [float(a) for a in args.alpha.split(",")]
    for row in _space(args).arithmetic(args.text, args.plus, args.minus, alphas, args.decoding).itertuples():
        print(f"α={row.alpha:g}\t{row.text}")


def cmd_capture(args) -> None:
    from latentviz import fit, runs

    run = runs.from_flags(runs.SAERun(), args)
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


def cmd_features(args) -> None:
    from latentviz import features

    store = _store(args)
    bar = _Bar()
    try:
        built = features.build(store, args.model, progress=bar)
        stats = features.statistics(store, args.model)
    finally:
        bar.close()
    fired = stats[stats["fires"] > 0]
    parts = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in built["seconds"].items())
    print(
        f"SAE {args.model}: {len(fired):,} of {len(stats):,} features fired over {built['tokens']:,} tokens; "
        f"every dashboard built in {sum(built['seconds'].values()):.1f} s ({parts}). Best labelled:"
    )
    best = features.best_labelled(stats, args.show)
    print(best[["feature", "density", "max", "label", "label_confidence"]].to_string(index=False))


def cmd_export_sae(args) -> None:
    from latentviz import saelens
    from latentviz.models import base

    row = _store(args, read_only=True).trained_model(args.model, "sae", "SAE")
    print(f"SAE {args.model} written in the SAELens layout to {saelens.export(base.load(row['checkpoint']), args.out)}")


def cmd_import_sae(args) -> None:
    from latentviz import runs, saelens
    from latentviz.fit import common
    from latentviz.models import base

    sae, where = saelens.read(args.path, layer=args.layer, site=args.site, backbone=args.backbone)
    if args.dataset and not _store(args).has_dataset(args.dataset):
        raise LatentvizError(f"no dataset named {args.dataset!r}; see `latentviz info`")
    store = _store(args)
    config = sae.config
    run = runs.SAERun(
        dataset=args.dataset or "", backbone=config.model_name, layer=config.layer, site=config.site, model=config
    )
    model_id = common.add_run(
        store,
        "sae",
        args.name or f"imported {Path(args.path).name}",
        config.model_name,
        run,
        imported_from=str(args.path),
    )
    folder = base.save(sae, settings.models_dir(store.path) / str(model_id))
    store.finish_model(model_id, str(folder), {"imported": True})
    print(f"SAE {model_id}: {sae.config.architecture}, d_in {sae.config.d_in}, d_sae {sae.config.d_sae}, reads {where}")


def cmd_info(args) -> None:
    print(json.dumps(_store(args, read_only=True).info(), indent=2, default=str))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args) -> None:
    if args.bundle:
        from latentviz import bundle

        if args.allow_writes:
            raise LatentvizError("a bundle is served read-only: drop --allow-writes")
        args.db = str(bundle.check(Path(args.bundle)))
        args.read_only = args.no_bootstrap = args.no_worker = True
        os.environ[settings.CACHE_ENV] = str(settings.user_cache() / "backbones")  # never inside the bundle
    db = settings.db_path(args.db).resolve()
    if args.address not in LOOPBACK and not (args.read_only or args.allow_writes):
        raise LatentvizError(
            f"serving on {args.address} lets anyone who reaches it train, ingest and load models: add --read-only "
            "(a demo) or --allow-writes (you trust that network)"
        )
    if args.read_only:
        _store(args, read_only=True)  # fail here, with a clear message, rather than in the browser
    env = {
        **os.environ,
        settings.DB_ENV: str(db),
        "LATENTVIZ_READ_ONLY": "1" if args.read_only else "0",
        "LATENTVIZ_BOOTSTRAP": "0" if args.no_bootstrap else "1",
        settings.WORKER_ENV: "0" if args.no_worker or args.read_only else "1",
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
        str(args.port),
        "--server.address",
        args.address,
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
    ]
    print(f"latentviz: serving {db} on http://{args.address}:{args.port}", file=sys.stderr)
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # become the server, so a signal to this process reaches it


def cmd_export(args) -> None:
    from latentviz import bundle, static_site

    store = _store(args, read_only=True)
    if args.static:
        sizes = static_site.export(
            store, Path(args.static), datasets=args.datasets, model_ids=args.models, max_mb=args.max_mb
        )
        _print_sizes(sizes)
        print(f"latentviz: static site {args.static}: serve the folder with any web server", file=sys.stderr)
        return
    manifest = bundle.export(store, Path(args.out), datasets=args.datasets, model_ids=args.models)
    models = ", ".join(f"#{model['id']} {model['kind']}" for model in manifest["models"]) or "none"
    print(
        f"latentviz: bundle {args.out}: datasets {', '.join(manifest['datasets'])}; {len(manifest['maps'])} map(s); "
        f"models {models}",
        file=sys.stderr,
    )
    _print_sizes(bundle.sizes(Path(args.out)))
    print(f"serve it with: latentviz serve --bundle {args.out}", file=sys.stderr)


def _print_sizes(sizes: dict[str, int]) -> None:
    for part, size in sizes.items():
        print(f"  {part:<32} {size / 2**20:>9,.1f} MB")


def cmd_worker(args) -> None:
    from latentviz import jobs

    store = _store(args)
    print(f"latentviz: worker on {store.path}, {args.jobs} job(s) at a time", file=sys.stderr, flush=True)
    if not jobs.serve_worker(store, at_once=args.jobs, idle_exit=args.idle_exit):
        raise LatentvizError(f"a worker already runs on {store.path}")


class Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default, taken from the run spec (flags without one say nothing)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, "") else super()._get_help_string(action)


def parser() -> argparse.ArgumentParser:
    from latentviz import runs

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"workspace DuckDB file (default ${settings.DB_ENV} or {settings.DEFAULT_DB})")
    root = argparse.ArgumentParser(prog="latentviz", description="Look inside the latent spaces of language models.")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ingest", parents=[common], help="add a dataset: bbc-news or a .txt/.csv/.tsv/.jsonl/.parquet file"
    )
    p.add_argument("source", help="bbc-news, or a file path")
    p.add_argument("--name", help="dataset name (default: bbc-news, or the file name without extension)")
    p.add_argument("--text-column", help="column holding the text (CSV/TSV/JSONL/Parquet)")
    p.add_argument("--label-column", help="column holding a label to colour by")
    p.add_argument(
        "--limit",
        type=int,
        help=f"keep at most N texts (bbc-news: a balanced subset, default {settings.DEFAULT_LIMIT})",
    )
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser(
        "encode", parents=[common], help="encode a dataset's texts with a backbone (resumes if interrupted)"
    )
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--backbone",
        default=settings.DEFAULT_BACKBONE,
        help="minilm, smollm2, a Hugging Face id or a local model folder",
    )
    p.add_argument("--layer", type=int, help="hidden layer to pool (default: last for encoders, middle for causal LMs)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32; try 128+ on a GPU)")
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("project", parents=[common], help="compute a 2-D map (UMAP or PCA) of an encoding")
    p.add_argument("--dataset", required=True)
    p.add_argument("--backbone", default=settings.DEFAULT_BACKBONE)
    p.add_argument("--layer", type=int)
    p.add_argument("--method", choices=["umap", "pca"], default="umap")
    p.set_defaults(run=cmd_project)

    p = sub.add_parser("train", help="train a latent model on a dataset's encodings")
    families = p.add_subparsers(dest="family", required=True)
    helps = {
        "vq": "VQ model: sentence embedding (or token state) → discrete codes → embedding",
        "vae": "text VAE: sentence → Gaussian latent → words",
        "sae": "sparse autoencoder on a causal LM's layer activations",
    }
    for family, run_class in runs.RUNS.items():
        p = families.add_parser(family, parents=[common], help=helps[family], formatter_class=Defaults)
        p.add_argument("--resume", type=int, metavar="MODEL_ID", help="continue a stopped run from its last checkpoint")
        p.add_argument("--json", action="store_true", help="print every held-out figure as one JSON object")
        runs.add_flags(p, run_class())
        p.set_defaults(run=lambda args, family=family: _train(family, args))

    decoding = argparse.ArgumentParser(add_help=False)
    decoding.add_argument("model", type=int, metavar="MODEL_ID")
    decoding.add_argument(
        "--decoding",
        choices=["greedy", "beam", "sample"],
        default="beam",
        help="beam search (default, width --beam), greedy, or sampling at --temperature",
    )
    decoding.add_argument("--beam", type=int, default=5, help="beam width (--decoding beam)")
    decoding.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (--decoding sample)")

    p = sub.add_parser("decode", parents=[common, decoding], help="reconstruct a sentence with a trained VAE")
    p.add_argument("--text", required=True)
    p.add_argument("--sample", action="store_true", help="decode a sample of the posterior instead of its mean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--neighbours", type=int, default=0, metavar="K", help="also list the K dataset texts nearest in latent space"
    )
    p.set_defaults(run=cmd_decode)

    p = sub.add_parser("sample", parents=[common, decoding], help="decode sentences from the prior of a trained VAE")
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser(
        "interpolate", parents=[common, decoding], help="decode the path between two sentences in a VAE's latent space"
    )
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end", required=True)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--method", choices=["lerp", "slerp"], default="slerp")
    p.set_defaults(run=cmd_interpolate)

    p = sub.add_parser(
        "traverse", parents=[common, decoding], help="sweep a direction of a sentence's latent from -3σ to +3σ"
    )
    p.add_argument("--text", required=True)
    p.add_argument("--dim", type=int, help="a latent dimension")
    p.add_argument("--pca", type=int, metavar="K", help="the K-th principal direction of the dataset's posterior means")
    p.add_argument("--labels", nargs=2, metavar=("A", "B"), help="the direction mean z|A − mean z|B")
    p.add_argument("--steps", type=int, default=7)
    p.set_defaults(run=cmd_traverse)

    p = sub.add_parser("arithmetic", parents=[common, decoding], help="z(text) + α·(mean z|A − mean z|B), decoded")
    p.add_argument("--text", required=True)
    p.add_argument("--plus", required=True, metavar="A", help="label whose mean is added, e.g. sport")
    p.add_argument("--minus", required=True, metavar="B", help="label whose mean is subtracted, e.g. business")
    p.add_argument("--alpha", default="0,0.5,1,1.5,2", help="comma-separated α values")
    p.set_defaults(run=cmd_arithmetic)

    p = sub.add_parser(
        "capture",
        parents=[common],
        formatter_class=Defaults,
        help="capture a causal LM's layer activations over a dataset (for SAEs)",
    )
    runs.add_flags(
        p,
        runs.SAERun(),
        only=("dataset", "backbone", "layer", "site", "max_tokens", "keep_sinks"),
        required=("dataset",),
    )
    p.set_defaults(run=cmd_capture)

    p = sub.add_parser(
        "features",
        parents=[common],
        help="store an SAE's activations on its captured tokens; feature statistics and examples",
    )
    p.add_argument("model", type=int, metavar="MODEL_ID")
    p.add_argument("--show", type=int, default=10, help="features to print")
    p.set_defaults(run=cmd_features)

    p = sub.add_parser("export-sae", parents=[common], help="write a trained SAE in the SAELens layout")
    p.add_argument("model", type=int, metavar="MODEL_ID")
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_export_sae)

    p = sub.add_parser(
        "import-sae",
        parents=[common],
        help="add an SAE saved in the SAELens layout (cfg.json + sae_weights.safetensors)",
    )
    p.add_argument("path")
    p.add_argument("--layer", type=int, help="the layer it reads, when cfg.json names no hook (1-based)")
    p.add_argument("--site", choices=tuple(settings.SITES), help="the site it reads, when cfg.json names no hook")
    p.add_argument("--backbone", help="the LM it reads (smollm2, a folder or a hub id), when cfg.json names no model")
    p.add_argument("--dataset", help="the dataset it belongs with (optional)")
    p.add_argument("--name")
    p.set_defaults(run=cmd_import_sae)

    p = sub.add_parser("info", parents=[common], help="print the workspace contents as one JSON object")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("serve", parents=[common], help="start the app on this workspace")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on (0.0.0.0: every one)")
    p.add_argument("--allow-writes", action="store_true", help="allow a writable app on a non-loopback address")
    p.add_argument("--read-only", action="store_true", help="open the workspace read-only (for shared demos)")
    p.add_argument("--bundle", metavar="DIR", help="serve a bundle (latentviz export) read-only, after checking it")
    p.add_argument(
        "--no-bootstrap", action="store_true", help="do not build the default BBC News map in an empty workspace"
    )
    p.add_argument(
        "--no-worker", action="store_true", help="queue jobs only; run `latentviz worker` yourself to work through them"
    )
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("export", parents=[common], help="write a bundle (a folder to serve read-only) or a static site")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="the bundle folder to create (served by latentviz serve --bundle)")
    where.add_argument("--static", metavar="DIR", help="a static site instead: plain files any static host serves")
    p.add_argument(
        "--max-mb", type=float, default=settings.STATIC_MAX_MB, help="with --static: refuse a site larger than this"
    )
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="datasets to include (default: all)")
    p.add_argument("--models", nargs="+", type=int, metavar="MODEL_ID", help="models (default: all of those datasets)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("worker", parents=[common], help="run the app's queued jobs (serve starts one when needed)")
    p.add_argument("--jobs", type=int, default=1, help="jobs run at once (each heavy job uses every core)")
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds with an empty queue")
    p.set_defaults(run=cmd_worker)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except LatentvizError as error:
        print(f"latentviz {args.command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentviz {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
