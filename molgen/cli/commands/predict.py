"""``molgen predict``: predict a file with a trained predictor."""

from __future__ import annotations

import argparse

from molgen.cli.common import quiet

NAME = "predict"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("predictor", "inputs"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "predict", help="predict a file with a trained predictor",
        description="Write a CSV: the input, then <target>_mean, <target>_std and (calibrated predictors) <target>_lower, "
        "<target>_upper (conformal interval) for each target, then in_domain, similarity (max Tanimoto to the training "
        "set) and, for neural models, latent_distance (1: as close as a typical training molecule), "
        "then a reason column for rows without a prediction (invalid inputs stay in the table).",
    )
    parser.add_argument("predictor", help="directory written by molgen fit-predictor")
    parser.add_argument("inputs", help=".smi/.csv/.sdf of molecules, or a CSV with a 'cif' column for crystals")
    parser.add_argument("--id-column", help="identifier column (or SD property) put first in the output "
                         "(default: an id/name/compound_id column, a .smi name field or the SD title)")
    parser.add_argument("-o", "--output", required=True, help="CSV to write")
    parser.add_argument("--device", default="cpu", help="where the networks run: cpu (default), auto or cuda[:N]")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.predictors import predict_file

    counts = predict_file(args.predictor, args.inputs, args.output, id_column=args.id_column, progress=not quiet(args),
                          device=args.device)
    print(f"predicted {counts['n_predicted']} of {counts['n']} entries: {counts['path']}")
    return 0
