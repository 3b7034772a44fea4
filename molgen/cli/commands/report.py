"""``molgen report``: one self-contained HTML report."""

from __future__ import annotations

import argparse

NAME = "report"
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("source", "reference"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "report", help="one self-contained HTML report of a run or an output file",
        description="Write one HTML file (no external links; plots and pictures inline) for a train run (loss curves), "
        "a sample or evaluate output (metric table, property histograms, molecule or structure pictures), an optimize "
        "run (top-k and AUC against oracle calls, best molecules), a discover run (funnel per round, selected "
        "structures) or a `molgen demo` directory.",
    )
    parser.add_argument("source", help="run directory, sample file (.smi/.csv/.txt/.fasta) or evaluate JSON")
    parser.add_argument("-o", "--output", required=True, help="HTML file to write")
    parser.add_argument("--reference", help="data set or file to draw property histograms against")
    parser.add_argument("--title", help="report title")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.report import write_report

    summary = write_report(args.source, args.output, title=args.title, reference=args.reference)
    print(f"{summary.kind} report with {len(summary.sections)} sections and {summary.n_images} pictures: {summary.path}")
    return 0
