"""``molgen predict``: predict a file with a trained predictor."""

from __future__ import annotations

import argparse

from molgen.cli.common import add_executor_options, quiet

NAME = "predict"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: Gets --precision (bf16 autocast of its inference; see molgen.core.device.autocast).
PRECISION = True
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("predictor", "inputs"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "predict", help="predict a file with a trained predictor",
        description="Write a CSV: the input, then <target>_mean, <target>_std and (calibrated predictors) <target>_lower, "
        "<target>_upper (conformal interval) for each target, then in_domain, similarity (max Tanimoto to the training "
        "set) and, for neural models, latent_distance (1: as close as a typical training molecule), "
        "then a reason column for rows without a prediction (invalid inputs stay in the table). The file is streamed a "
        "chunk at a time; --executor process or ray predicts the chunks in parallel, rows keep the input order.",
    )
    parser.add_argument("predictor", help="directory written by molgen fit-predictor")
    parser.add_argument("inputs", help=".smi/.csv/.sdf of molecules, or a CSV with a 'cif' column for crystals")
    parser.add_argument("--id-column", help="identifier column (or SD property) put first in the output "
                         "(default: an id/name/compound_id column, a .smi name field or the SD title)")
    parser.add_argument("-o", "--output", required=True, help="CSV to write")
    parser.add_argument("--device", default="cpu", help="where the networks run: cpu (default), auto or cuda[:N]")
    add_executor_options(parser, "parsing and prediction", default_chunk=1024)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.predictors import predict_file

    counts = predict_file(args.predictor, args.inputs, args.output, id_column=args.id_column, progress=not quiet(args),
                          device=args.device, executor=args.executor, workers=args.workers, chunk_size=args.chunk_size)
    print(f"predicted {counts['n_predicted']} of {counts['n']} entries: {counts['path']}")
    return 0
