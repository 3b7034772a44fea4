"""Helpers shared by the ``molgen`` subcommands."""

from __future__ import annotations

import argparse

from molgen.core.errors import MolgenError


def quiet(args: argparse.Namespace) -> bool:
    """--quiet (or the older --no-progress) was given."""
    return bool(getattr(args, "quiet", False) or getattr(args, "no_progress", False))


def parse_conditions(items: list[str] | None) -> dict[str, float | tuple[float, float]] | None:
    """``["heat_ref=-0.5", "logP=2:3"]`` -> ``{"heat_ref": -0.5, "logP": (2.0, 3.0)}``
    (a range is drawn uniformly per sample; None when empty)."""
    if not items:
        return None
    out: dict[str, float | tuple[float, float]] = {}
    for item in items:
        name, _, value = item.partition("=")
        low, colon, high = value.partition(":")
        try:
            if not name.strip():
                raise ValueError
            out[name.strip()] = (float(low), float(high)) if colon else float(value)
        except ValueError:
            raise MolgenError(f"--condition expects NAME=NUMBER or NAME=LOW:HIGH, got {item!r}") from None
    return out


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, float] | None:
    """``["name=0.5"]`` -> ``{"name": 0.5}`` (None when empty); ``flag`` names
    the option in the error."""
    if not items:
        return None
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            if not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise MolgenError(f"{flag} expects NAME=NUMBER, got {item!r}") from None
    return out


def add_executor_options(parser: argparse.ArgumentParser, what: str, default_chunk: int | None = None) -> None:
    """``--executor``, ``--workers`` (and ``--chunk-size``) for a command whose
    batches can run in parallel (see :mod:`molgen.core.executors`).

    Args:
        parser: The command's parser.
        what: What the workers do, for the help text.
        default_chunk: Adds ``--chunk-size`` with this default when given.
    """
    parser.add_argument("--executor", choices=["serial", "process", "ray"], default="serial",
                        help=f"where {what} runs: serial (this process, default), process (a local pool of --workers) "
                        "or ray (the cluster at $RAY_ADDRESS, else a local instance of --workers CPUs; "
                        "pip install 'molgen[ray]')")
    parser.add_argument("--workers", type=int, default=2, help="pool processes or local Ray CPUs (default 2)")
    if default_chunk is not None:
        parser.add_argument("--chunk-size", type=int, default=default_chunk,
                            help=f"entries per task (default {default_chunk}); memory stays flat with file size")
