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
