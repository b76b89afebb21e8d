"""Commands that share a workspace or run it: info, serve, export, worker."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from latentviz import settings
from latentviz.cli.output import open_store
from latentviz.errors import LatentvizError


def app_script() -> Path:
    """app.py: beside the package in a source checkout, else where the wheel installed it."""
    for folder in (Path(__file__).resolve().parents[2], Path(sys.prefix) / "share" / "latentviz"):
        if (folder / "app.py").exists() and (folder / "views").is_dir():
            return folder / "app.py"
    raise LatentvizError(
        f"the app's scripts are missing: no app.py beside {Path(__file__).parent} or in {sys.prefix}/share/latentviz"
    )


def cmd_info(args, spec) -> None:
    print(json.dumps(open_store(args, read_only=True).info(), indent=2, default=str))


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
        open_store(args, read_only=True)  # fail here, with a clear message, rather than in the browser
    env = {
        **os.environ,
        settings.DB_ENV: str(db),
        "LATENTVIZ_READ_ONLY": "1" if spec.read_only else "0",
        settings.BUNDLE_ENV: "1" if spec.bundle else "0",
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
        "latentviz.server",  # streamlit, its pages' imports started at once
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
    store = open_store(args, read_only=True)
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
    from latentviz import engines, jobs

    store = open_store(args)
    engines.use(spec.engine)
    print(
        f"latentviz: worker on {store.path}, {spec.jobs} job(s) at a time, engine {spec.engine.engine}",
        file=sys.stderr,
        flush=True,
    )
    if not jobs.serve_worker(store, at_once=spec.jobs, idle_exit=spec.idle_exit):
        raise LatentvizError(f"a worker already runs on {store.path}")
