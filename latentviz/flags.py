"""Command-line flags generated from a spec: every field made with `option(...)` (below) becomes
a flag whose help states its default, so the CLI, the pages and the package read one default. Used for
the run specs (runs.py) and the step specs (steps.py)."""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import field, fields, is_dataclass, replace

from latentviz.errors import ConfigError


def option(
    default,
    help: str,
    *,
    flag: str | None = None,
    choices=None,
    derived: bool = False,
    required: bool = False,
    positional: bool = False,
):
    """A config field with its help text: this module turns such fields of the run and step specs into
    CLI flags whose help states this default, and the pages read the same default. `flag` renames the
    flag; `derived` marks a field set from the data or the backbone (no flag); `required` and
    `positional` say how the command line must give it. A list default is copied."""
    metadata = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "derived": derived,
        "required": required,
        "positional": positional,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _options(spec, prefix: str = ""):
    """(path, field, value, owner) of every option of a spec instance, nested configs included;
    `owner` is the dataclass instance that holds the field."""
    for f in fields(spec):
        value = getattr(spec, f.name)
        if is_dataclass(value):
            yield from _options(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value, spec


def _is_flag(spec, path: str, f) -> bool:
    return "help" in f.metadata and not f.metadata["derived"] and path not in getattr(type(spec), "derived", ())


def _flag(f) -> str:
    return "--" + (f.metadata["flag"] or f.name).replace("_", "-")


def _dest(path: str) -> str:
    return path.replace(".", "__")


def _kind(owner, f):
    """The field's type without None: int | None gives int, tuple[str, str] | None gives tuple[str, str]."""
    kind = typing.get_type_hints(type(owner))[f.name]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(t for t in typing.get_args(kind) if t is not type(None))
    return kind


def add_flags(
    parser: argparse.ArgumentParser, spec, only: tuple[str, ...] | None = None, required: tuple[str, ...] = ()
) -> None:
    """A flag for every option of `spec` (a spec instance: its values are the defaults), or for the
    paths in `only`; those in `required`, or made with `required=True`, must be given, and those made
    with `positional=True` are arguments. Booleans get --name / --no-name; lists are comma-separated
    (a list that is None by default takes any number of values instead); a tuple takes that many values."""
    for path, f, value, owner in _options(spec):
        if not _is_flag(spec, path, f) or (only is not None and path not in only):
            continue
        kind = _kind(owner, f)
        name = _flag(f)
        kwargs = {
            "dest": _dest(path),
            "metavar": name[2:].upper().replace("-", "_"),
            "help": f.metadata["help"].replace("%", "%%"),  # argparse %-formats help texts
        }
        if kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=value, metavar=None)
        elif typing.get_origin(kind) is list and value is None:  # none by default: any number, space-separated
            kwargs.update(nargs="+", type=typing.get_args(kind)[0], default=None)
        elif typing.get_origin(kind) is list:
            kwargs.update(default=",".join(map(str, value)), metavar="N,N,...")
        elif typing.get_origin(kind) is tuple:
            kwargs.update(nargs=len(typing.get_args(kind)), default=value)
        else:
            kwargs.update(type=kind, default=value)
        if f.metadata["choices"] and typing.get_origin(kind) is list and value is not None:
            kwargs.update(metavar=",".join(f.metadata["choices"]))  # each item is checked in from_flags
        elif f.metadata["choices"]:
            kwargs.update(choices=list(f.metadata["choices"]), metavar=None)
        if f.metadata.get("positional"):
            parser.add_argument(kwargs.pop("dest"), **kwargs)
            continue
        if path in required or f.metadata.get("required"):
            kwargs.update(required=True, default=None)
        short = [name[1:]] if len(name) == 3 else []  # -n as well as --n
        parser.add_argument(*short, name, **kwargs)


def from_flags(spec, args: argparse.Namespace):
    """`spec` with the values of the parsed flags (those that add_flags made)."""
    changes: dict[str, dict] = {}
    for path, f, value, owner in _options(spec):
        if not hasattr(args, _dest(path)):
            continue
        given = getattr(args, _dest(path))
        kind = _kind(owner, f)
        if typing.get_origin(kind) is list and value is not None:
            (item,) = typing.get_args(kind)
            try:
                given = [item(part) for part in str(given).split(",")]
            except ValueError:
                what, example = ("integers", "8,5,5,5") if item is int else ("numbers", "0,0.5,1")
                raise ConfigError(
                    f"{_flag(f)} takes {what} separated by commas, e.g. {example}; got {given!r}"
                ) from None
            unknown = [part for part in given if f.metadata["choices"] and part not in f.metadata["choices"]]
            if unknown:
                raise ConfigError(
                    f"{_flag(f)}: unknown {', '.join(map(str, unknown))}; choose from "
                    f"{', '.join(f.metadata['choices'])}"
                )
        elif typing.get_origin(kind) is tuple and given is not None:
            given = tuple(given)
        *parents, name = path.split(".")
        changes.setdefault(".".join(parents), {})[name] = given
    nested = {part: replace(getattr(spec, part), **values) for part, values in changes.items() if part}
    return replace(spec, **changes.get("", {}), **nested)


def set_flag(spec, args: argparse.Namespace, flag: str, text: str) -> None:
    """Give a flag of `spec` (its name without --) a value written as on the command line."""
    for path, f, _, owner in _options(spec):
        if _is_flag(spec, path, f) and _flag(f) == "--" + flag:
            kind = _kind(owner, f)
            if kind is bool or typing.get_origin(kind) in (list, tuple):
                raise ConfigError(f"--{flag} cannot be swept: give a flag that takes one number or word")
            try:
                setattr(args, _dest(path), kind(text))
            except ValueError:
                raise ConfigError(f"--{flag} takes {kind.__name__} values; got {text!r}") from None
            return
    raise ConfigError(f"no flag --{flag} to sweep; see --help")


def defaults(spec) -> dict[str, object]:
    """path → default of every flag of a spec instance (for the agreement tests and the docs)."""
    return {path: value for path, f, value, _ in _options(spec) if _is_flag(spec, path, f)}
