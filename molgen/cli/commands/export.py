"""``molgen export``: export the best candidates of an optimize run."""

from __future__ import annotations

import argparse

from molgen.core.errors import MolgenError

NAME = "export"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("run",))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "export", help="export the best candidates of an optimize run", description="Write the best candidates of a "
        "`molgen optimize` run (best score first) as CSV (all components) or SDF (2D coordinates, scores as properties).",
    )
    parser.add_argument("run", help="run directory of `molgen optimize`")
    parser.add_argument("--top", type=int, default=100, help="how many (default 100; 0: all)")
    parser.add_argument("-o", "--output", required=True, help=".csv or .sdf")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.optimization import export_top

    if args.top < 0:
        raise MolgenError("--top must be >= 0")
    path = export_top(args.run, args.output, args.top or None)
    print(f"wrote {path}")
    return 0
