"""``molgen score``: score a file with an objective."""

from __future__ import annotations

import argparse

from molgen.cli.common import add_executor_options, quiet

NAME = "score"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: Gets --precision (bf16 autocast of its inference; see molgen.core.device.autocast).
PRECISION = True
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("molecules", "objective"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``score`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "score",
        help="score a file of molecules with an objective",
        description="Score every SMILES of a file with a named objective (qed, pmo/<task>, "
        "guacamol/<task>, ...) or an objective TOML file, and write a CSV with the total, each "
        "component's raw and transformed value, the filter that rejected a molecule and why a score is missing. "
        "The file is streamed a chunk at a time (memory stays flat with its length); --executor process or ray "
        "scores the chunks in parallel, rows keep the input order.",
    )
    parser.add_argument("molecules", help=".smi, .txt or .csv of SMILES, or an .sdf (optionally .gz)")
    parser.add_argument("--objective", required=True, help="objective name or TOML file")
    parser.add_argument("--id-column", help="identifier column (or SD property) put first in the output "
                       "(default: an id/name/compound_id column, a .smi name field or the SD title)")
    parser.add_argument("-o", "--output", required=True, help="CSV to write")
    add_executor_options(parser, "parsing and scoring", default_chunk=1024)
    parser.add_argument("--device", default="cpu",
                        help="where learned components (predictor:...) run: cpu (default), auto or cuda[:N]")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.scoring import score_file

    summary = score_file(args.molecules, args.objective, args.output, id_column=args.id_column, progress=not quiet(args),
                         executor=args.executor, workers=args.workers, chunk_size=args.chunk_size, device=args.device)
    print(f"scored {summary.n_scored} of {summary.n} molecules; best {summary.best:.4f}; table: {summary.path}")
    return 0
