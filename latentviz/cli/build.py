"""Commands that build a workspace: ingest, encode, project, train, capture."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext

from latentviz.cli.output import Bar, number, open_store
from latentviz.errors import LatentvizError


def cmd_ingest(args, spec) -> None:
    from latentviz import pipeline

    with Bar() as bar:
        result = pipeline.ingest(
            open_store(args),
            spec.source,
            name=spec.name,
            text_column=spec.text_column,
            label_column=spec.label_column,
            limit=spec.limit,
            progress=bar,
        )
    print(f"dataset {result.dataset!r}: {result.report.summary()}")


def cmd_encode(args, spec) -> None:
    from latentviz import pipeline

    with Bar() as bar:
        encoding_id = pipeline.encode(
            open_store(args),
            spec.dataset,
            backbone_name=spec.backbone,
            layer=spec.layer,
            batch_size=spec.batch_size,
            engine=spec.engine,
            progress=bar,
        )
    print(f"encoding {encoding_id}: dataset {spec.dataset!r}, backbone {spec.backbone}")


def cmd_project(args, spec) -> None:
    from latentviz import pipeline

    store = open_store(args)
    encoding_id = pipeline.find_encoding(store, spec.dataset, spec.backbone, spec.layer)
    with Bar() as bar:
        projection_id = pipeline.project(store, encoding_id, method=spec.method, progress=bar)
    print(f"projection {projection_id}: {spec.method} of encoding {encoding_id}")


def cmd_train(args, run) -> None:
    """`train vq|vae|sae`: a new run from the flags (see runs.py), or --resume of a stopped one. Under
    torchrun an SAE trains data-parallel, process 0 alone reporting and writing, or with --sweep each
    process trains its own SAE (distributed.py)."""
    from latentviz import distributed, runs
    from latentviz.progress import quiet

    module = runs.FAMILIES[run.kind].fit
    if args.resume is None and not run.dataset:
        raise LatentvizError(f"train {run.kind} needs --dataset NAME (or --resume MODEL_ID)")
    sweep = bool(getattr(args, "sweep", None))
    if sweep and args.resume is not None:
        raise LatentvizError("--sweep starts new runs; resume each of a sweep's SAEs by its own id")
    if distributed.requested():
        if run.kind != "sae":
            raise LatentvizError(f"only an SAE trains on several processes; run train {run.kind} without torchrun")
        distributed.start()
        if sweep:  # each its own SAE: the captures are taken in turn (two at once could take the same one twice)
            for turn in range(distributed.size()):
                if distributed.rank() == turn:
                    module.capture(open_store(args), run)
                distributed.barrier()
            distributed.stop()
    elif sweep:
        raise LatentvizError("--sweep trains one SAE per process: run it with torchrun --nproc-per-node N")
    with Bar() if distributed.launched_rank() == 0 else nullcontext(quiet) as bar:  # one bar, not one a process
        if args.resume is not None:
            model_id = module.resume(open_store(args), args.resume, progress=bar)
        else:
            model_id = module.train(open_store(args), run, progress=bar)
    reports = distributed.is_main()  # every process of a sweep (alone by now); process 0 of a data-parallel run
    distributed.finish()
    if reports:
        _print_figures(args, model_id)


def _print_figures(args, model_id: int) -> None:
    """A trained model's held-out figures as a short table (histograms and other lists stay in
    `info`), or all of them as JSON with --json; printed at once, so a sweep's processes do not mix lines."""
    figures = open_store(args).model(model_id)["metrics"]
    if "warning" in figures:  # what the run's own curves say went wrong
        print(f"warning: {figures['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": model_id, **figures}, indent=2))
        return
    rows = [
        (name, value) for name, value in figures.items() if not isinstance(value, (dict, list)) and name != "warning"
    ]
    width = max((len(name) for name, _ in rows), default=0)
    lines = [f"model {model_id}: held-out figures (all of them: latentviz info)"]
    lines += [f"  {name:<{width}}  {number(value)}" for name, value in rows]
    print("\n".join(lines), flush=True)


def cmd_capture(args, run) -> None:
    from latentviz import fit, flags, steps

    engine = flags.from_flags(steps.Engine(), args)
    with Bar() as bar:
        capture_id = fit.sae.capture(open_store(args), run, progress=bar, engine=engine)
    row = open_store(args).captures().set_index("id").loc[capture_id]
    print(
        f"capture {capture_id}: {int(row['tokens']):,} tokens of {run.backbone} layer {int(row['layer'])} {run.site} "
        f"on {run.dataset!r}"
    )
