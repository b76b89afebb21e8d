"""Each step's defaults are written once, in its spec (steps.py): the CLI's flags, the package's
functions and the pages (tests/test_app.py) read them, so a knob that appears in more than one place
cannot drift."""

import inspect

import pytest

from latentviz import cli, flags, jobs, latent_space, pipeline, steps
from latentviz.errors import ConfigError
from latentviz.models.vae import TextVAE


def parse(*argv):
    return cli.parser().parse_args(list(argv))


# What each command must be given; everything else is the spec's default.
GIVEN = {
    "ingest": ["bbc-news"],
    "encode": ["--dataset", "d"],
    "project": ["--dataset", "d"],
    "decode": ["3", "--text", "t"],
    "sample": ["3"],
    "interpolate": ["3", "--from", "a", "--to", "b"],
    "traverse": ["3", "--text", "t"],
    "arithmetic": ["3", "--text", "t", "--plus", "a", "--minus", "b"],
    "capture": ["--dataset", "d"],
    "features": ["3"],
    "feature": ["3", "7"],
    "text-features": ["3", "some text"],
    "export-sae": ["3", "--out", "o"],
    "import-sae": ["folder"],
    "eval": ["3"],
    "compare": ["3", "4"],
    "serve": [],
    "export": [],
    "worker": [],
}


@pytest.mark.parametrize("name, spec", [(name, spec) for name, spec, _, _ in cli._commands() if spec is not None])
def test_every_command_default_is_its_spec(name, spec):
    args = parse(name, *GIVEN[name])
    parsed = flags.from_flags(spec, args)
    given = {path: value for path, value in flags.defaults(parsed).items() if value != flags.defaults(spec)[path]}
    # only what the command line gave differs from the spec: the positional and required values
    assert set(given) <= {
        "source",
        "dataset",
        "model",
        "text",
        "start",
        "end",
        "plus",
        "minus",
        "out",
        "path",
        "feature",
        "a",
        "b",
    }
    assert all(str(value) in GIVEN[name] for value in given.values())


def test_the_help_states_each_default():
    text = cli.parser()._subparsers._group_actions[0].choices["interpolate"].format_help()
    assert f"(default: {steps.INTERPOLATE.steps})" in text and f"(default: {steps.DECODING.method})" in text


def test_decoding_flags_reach_the_nested_spec():
    args = parse("sample", "3", "--decoding", "sample", "--temperature", "0.7", "--beam", "3", "-n", "2")
    spec = flags.from_flags(steps.Sample(), args)
    assert spec.decoding.options() == {"method": "sample", "beam": 3, "temperature": 0.7} and spec.n == 2


def test_lists_and_pairs_parse():
    spec = flags.from_flags(steps.Arithmetic(), parse("arithmetic", "3", *GIVEN["arithmetic"][1:], "--alpha", "0,1"))
    assert spec.alpha == [0.0, 1.0]
    spec = flags.from_flags(steps.Traverse(), parse("traverse", "3", "--text", "t", "--labels", "sport", "tech"))
    assert spec.labels == ("sport", "tech")
    spec = flags.from_flags(steps.Export(), parse("export", "--out", "o", "--models", "3", "5"))
    assert spec.models == [3, 5] and spec.datasets is None


def defaults_of(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


def test_the_package_functions_default_to_the_specs():
    encode = defaults_of(pipeline.encode)
    assert (encode["backbone_name"], encode["batch_size"]) == (steps.ENCODE.backbone, steps.ENCODE.batch_size)
    assert defaults_of(pipeline.find_encoding)["backbone_name"] == steps.PROJECT.backbone == steps.ENCODE.backbone
    assert defaults_of(pipeline.project)["method"] == steps.PROJECT.method
    space = latent_space.LatentSpace
    interpolate = defaults_of(space.interpolate)
    assert (interpolate["steps"], interpolate["method"], interpolate["decoding"]) == (
        steps.INTERPOLATE.steps,
        steps.INTERPOLATE.method,
        steps.DECODING.method,
    )
    traverse = defaults_of(space.traverse)
    assert (traverse["steps"], traverse["method"]) == (steps.TRAVERSE.steps, steps.DECODING.method)
    arithmetic = defaults_of(space.arithmetic)
    assert list(arithmetic["alphas"]) == steps.ARITHMETIC.alpha and arithmetic["method"] == steps.DECODING.method
    sample = defaults_of(space.sample)
    assert (sample["n"], sample["seed"], sample["method"]) == (steps.SAMPLE.n, steps.SAMPLE.seed, steps.DECODING.method)
    for function in (space.decode, space.reconstruct):
        assert defaults_of(function)["method"] == steps.DECODING.method
    decode = defaults_of(TextVAE.decode)
    assert (decode["beam"], decode["temperature"]) == (steps.DECODING.beam, steps.DECODING.temperature)
    assert defaults_of(jobs.serve_worker)["at_once"] == steps.Worker().jobs


def test_a_list_flag_with_choices_takes_several_and_refuses_an_unknown_one():
    args = parse("eval", "3", "--evaluations", "core,labels")
    assert flags.from_flags(steps.Evaluate(), args).evaluations == ["core", "labels"]
    with pytest.raises(ConfigError, match="--evaluations: unknown nope; choose from core"):
        flags.from_flags(steps.Evaluate(), parse("eval", "3", "--evaluations", "core,nope"))
