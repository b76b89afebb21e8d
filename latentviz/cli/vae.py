"""Commands that read a trained VAE's latent space: decode, sample, interpolate, traverse, arithmetic."""

from __future__ import annotations

from latentviz import numbers
from latentviz.cli.output import open_store
from latentviz.errors import LatentvizError


def _space(args, spec):
    from latentviz import latent_space

    return latent_space.open_space(open_store(args), spec.model)


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
        print(f"{row.t:.2f}\t{row.text}")  # positions along the path, aligned
    print(
        f"smoothness (mean word edit distance between neighbours, lower is smoother): {numbers.figure(smoothness)}; "
        f"between random dataset sentences: {numbers.figure(space.smoothness_reference())}"
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
