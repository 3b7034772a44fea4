"""``molgen datasets``: list the registered data sets."""

from __future__ import annotations

import argparse

NAME = "datasets"


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``datasets`` subcommand on ``sub`` and return its parser."""
    return sub.add_parser("datasets", help="list the registered data sets", description="List registered data sets.")


def run(args: argparse.Namespace) -> int:
    """Print one line per registered data set; returns 0."""
    from molgen.core.registry import DATASETS

    for name, spec in DATASETS.items():
        print(f"{name:14s} {spec.domain:8s} {spec.description}")
    return 0
