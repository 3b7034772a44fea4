"""Command-line flags derived from the typed (pydantic) config fields they
override, so a flag's type, choices and help come from one place.

``add_config_option(parser, "--lr", RunConfig, "train.lr")`` adds ``--lr``
with the field's type and description and records the dotted path;
:func:`collect_overrides` turns the parsed flags back into
``{"train.lr": value}`` for :func:`molgen.workflows.training.apply_overrides`.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel

_PATHS = "_config_paths"  # parser default (so also an args attribute): dest -> dotted config path


def config_field(model: type[BaseModel], path: str):
    """The pydantic ``FieldInfo`` at dotted ``path`` of ``model``.

    Raises:
        KeyError: no such field (a programming error, found by the CLI tests).
    """
    *parents, name = path.split(".")
    for part in parents:
        model = _model_of(model.model_fields[part].annotation)
    return model.model_fields[name]


def _model_of(annotation) -> type[BaseModel]:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    raise KeyError(f"{annotation!r} is not a config section")


def _scalar(annotation) -> tuple[Any, tuple | None]:
    """``(argparse type, choices)`` of a field annotation (``X | None`` unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _scalar(args[0])
    if origin is Literal:
        return type(typing.get_args(annotation)[0]), typing.get_args(annotation)
    if annotation in (int, float, str):
        return annotation, None
    raise TypeError(f"no command-line type for {annotation!r}")


def add_config_option(parser: argparse.ArgumentParser, flag: str, model: type[BaseModel], path: str,
                      help: str | None = None, group=None, prefix: str = "") -> argparse.Action:
    """Add ``flag`` overriding the config field at ``path`` of ``model``.

    Args:
        parser: The subcommand's parser (records the path).
        flag: The option, e.g. ``"--batch-size"``.
        model: The config model the path starts from.
        path: Dotted field path, e.g. ``"train.batch_size"``.
        help: Help text (default: the field's description).
        group: Add to this argument group instead (e.g. a mutually exclusive one).
        prefix: Dotted path of ``model`` inside the settings (for a section
            whose type is a union, e.g. ``"strategy."``).

    Returns:
        The argparse action.
    """
    field = config_field(model, path)
    kind, choices = _scalar(field.annotation)
    action = (group or parser).add_argument(flag, type=kind, choices=choices, default=None,
                                            help=help or field.description)
    paths = dict(parser.get_default(_PATHS) or {})
    paths[action.dest] = prefix + path
    parser.set_defaults(**{_PATHS: paths})  # parsed arguments carry the mapping
    return action


def collect_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{dotted path: value}`` of the config flags given on the command line."""
    return {path: getattr(args, dest) for dest, path in (getattr(args, _PATHS, None) or {}).items()
            if getattr(args, dest, None) is not None}
