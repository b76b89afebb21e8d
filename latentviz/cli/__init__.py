"""The `latentviz` command (also `python -m latentviz`): each subcommand is one pipeline step, its
flags generated from the step's spec. The commands live by domain: `build` (ingest to capture),
`vae`, `sae` and `sharing`; `output` holds what they share."""

from __future__ import annotations

import argparse
import sys

from latentviz import settings
from latentviz.cli import build, sae, sharing, vae
from latentviz.cli.sharing import app_script
from latentviz.errors import LatentvizError

__all__ = ["app_script", "main", "parser"]


class Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default, taken from its spec (flags without one say nothing)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, "") else super()._get_help_string(action)


def _commands() -> list[tuple[str, object, object, str]]:
    """(name, spec, handler, help) of every command but `train`: its flags come from the spec."""
    from latentviz import runs, steps

    return [
        ("ingest", steps.Ingest(), build.cmd_ingest, "add a dataset: bbc-news or a .txt/.csv/.tsv/.jsonl/.parquet"),
        ("encode", steps.Encode(), build.cmd_encode, "encode a dataset's texts with a backbone (resumes)"),
        ("project", steps.Project(), build.cmd_project, "compute a 2-D map (UMAP or PCA) of an encoding"),
        ("decode", steps.Decode(), vae.cmd_decode, "reconstruct a sentence with a trained VAE"),
        ("sample", steps.Sample(), vae.cmd_sample, "decode sentences from the prior of a trained VAE"),
        ("interpolate", steps.Interpolate(), vae.cmd_interpolate, "decode the path between two sentences in a VAE"),
        ("traverse", steps.Traverse(), vae.cmd_traverse, "sweep a direction of a sentence's latent from -3σ to +3σ"),
        ("arithmetic", steps.Arithmetic(), vae.cmd_arithmetic, "z(text) + α·(mean z|A − mean z|B), decoded"),
        ("capture", runs.SAERun(), build.cmd_capture, "capture a causal LM's activations over a dataset (for SAEs)"),
        ("features", steps.Features(), sae.cmd_features, "build every feature dashboard of an SAE"),
        ("feature", steps.Feature(), sae.cmd_feature, "show one feature's dashboard (--json for scripts)"),
        ("text-features", steps.TextFeatures(), sae.cmd_text_features, "which SAE features fire on a text (--json)"),
        ("export-sae", steps.ExportSAE(), sae.cmd_export_sae, "write a trained SAE in the SAELens layout"),
        ("import-sae", steps.ImportSAE(), sae.cmd_import_sae, "add an SAE saved in the SAELens layout"),
        ("eval", steps.Evaluate(), sae.cmd_eval, "evaluate an SAE: CE loss recovered, KL, shrinkage, with intervals"),
        ("compare", steps.Compare(), sae.cmd_compare, "match two SAEs' features one to one (--json for every match)"),
        ("info", None, sharing.cmd_info, "print the workspace contents as one JSON object"),
        ("serve", steps.Serve(), sharing.cmd_serve, "start the app on this workspace"),
        ("export", steps.Export(), sharing.cmd_export, "write a bundle (a folder to serve read-only) or a static site"),
        ("worker", steps.Worker(), sharing.cmd_worker, "run the app's queued jobs (serve starts one when needed)"),
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
    from latentviz import flags, runs, steps

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
        if family.kind == "sae":
            p.add_argument(
                "--sweep",
                metavar="FLAG=V1,V2,...",
                help="under torchrun, one SAE per process, each with its own value of one flag (layer=4,8,12)",
            )
        flags.add_flags(p, family.run())
        p.set_defaults(run=build.cmd_train, spec=family.run())

    for name, spec, handler, help in _commands():
        p = sub.add_parser(name, parents=[common], help=help, formatter_class=Defaults)
        if name == "capture":
            flags.add_flags(p, spec, only=CAPTURE_FLAGS, required=("dataset",))
            flags.add_flags(p, steps.Engine())
        elif spec is not None:
            flags.add_flags(p, spec)
        p.set_defaults(run=handler, spec=spec)
    return root


def main(argv: list[str] | None = None) -> int:
    from latentviz import flags

    args = parser().parse_args(argv)
    try:
        if getattr(args, "sweep", None):  # this process's own value of the swept flag
            from latentviz import distributed

            flags.set_flag(args.spec, args, *distributed.sweep_value(args.sweep))
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
