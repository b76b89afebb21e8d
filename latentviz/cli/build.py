"""Commands that build a workspace: ingest, encode, project, train, capture."""

from __future__ import annotations

import json
import sys

from latentviz.cli.output import Bar, number, open_store
from latentviz.errors import LatentvizError


def cmd_ingest(args, spec) -> None:
    from latentviz import pipeline

    bar = Bar()
    try:
        result = pipeline.ingest(
            open_store(args),
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

    bar = Bar()
    try:
        encoding_id = pipeline.encode(
            open_store(args),
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

    store = open_store(args)
    encoding_id = pipeline.find_encoding(store, spec.dataset, spec.backbone, spec.layer)
    bar = Bar()
    try:
        projection_id = pipeline.project(store, encoding_id, method=spec.method, progress=bar)
    finally:
        bar.close()
    print(f"projection {projection_id}: {spec.method} of encoding {encoding_id}")


def cmd_train(args, run) -> None:
    """`train vq|vae|sae`: a new run from the flags (see runs.py), or --resume of a stopped one. Under
    torchrun an SAE trains data-parallel (distributed.py); process 0 alone reports and writes."""
    from latentviz import distributed, runs
    from latentviz.progress import quiet

    module = runs.FAMILIES[run.kind].fit
    if args.resume is None and not run.dataset:
        raise LatentvizError(f"train {run.kind} needs --dataset NAME (or --resume MODEL_ID)")
    if distributed.requested():
        if run.kind != "sae":
            raise LatentvizError(f"only an SAE trains on several processes; run train {run.kind} without torchrun")
        distributed.start()
    bar = Bar() if distributed.is_main() else quiet
    try:
        if args.resume is not None:
            model_id = module.resume(open_store(args), args.resume, progress=bar)
        else:
            model_id = module.train(open_store(args), run, progress=bar)
    finally:
        if distributed.is_main():
            bar.close()
    if distributed.is_main():
        _print_figures(args, model_id)


def _print_figures(args, model_id: int) -> None:
    """A trained model's held-out figures as a short table (histograms and other lists stay in
    `info`), or all of them as JSON with --json."""
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
    print(f"model {model_id}: held-out figures (all of them: latentviz info)")
    for name, value in rows:
        print(f"  {name:<{width}}  {number(value)}")


def cmd_capture(args, run) -> None:
    from latentviz import fit

    bar = Bar()
    try:
        capture_id = fit.sae.capture(open_store(args), run, progress=bar)
    finally:
        bar.close()
    row = open_store(args).captures().set_index("id").loc[capture_id]
    print(
        f"capture {capture_id}: {int(row['tokens']):,} tokens of {run.backbone} layer {int(row['layer'])} {run.site} "
        f"on {run.dataset!r}"
    )
