"""``molgen evaluate``: distribution metrics of generated objects."""

from __future__ import annotations

import argparse

from molgen.core.errors import MolgenError
from molgen.workflows.evaluation import DEFAULT_REFERENCE, DEFAULT_TRAINING, evaluate_file
from molgen.cli.common import quiet

NAME = "evaluate"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("generated", "ref", "train"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "evaluate",
        help="MOSES/GuacaMol metrics of generated molecules, CDVAE metrics of generated crystals",
        description="Compute MOSES and GuacaMol distribution-learning metrics of generated SMILES "
        "(invalid ones included, in sampling order). Reference and training statistics are cached "
        "under MOLGEN_HOME/metrics, so a second evaluation against the same sets is faster. Metrics "
        "that cannot be computed are reported as null with the reason. Crystals (a folder of CIFs, a CSV "
        "with a 'cif' column, .cif, extended XYZ or `molgen sample` text) are detected and scored with "
        "CDVAE's metrics (validity, COV-R/COV-P, density and element-count distances, uniqueness, "
        "novelty); give --ref (e.g. perov-5-test) and --train for those. FASTA files are peptides: "
        "validity, uniqueness, novelty, diversity, predicted-AMP fraction and property distances "
        "(defaults: amp-positive-test as reference, amp-positive-train for novelty).",
    )
    parser.add_argument("generated", help="generated SMILES: .smi, .txt, .csv or .sdf (molgen sample output works)")
    parser.add_argument("--ref", help=f"reference set, name or path (default {DEFAULT_REFERENCE} when available)")
    parser.add_argument("--train", help=f"training set for novelty (default {DEFAULT_TRAINING} when available)")
    parser.add_argument("--no-ref", action="store_true", help="skip the metrics against a reference")
    parser.add_argument("--no-train", action="store_true", help="skip novelty")
    parser.add_argument("--n", type=int, help="evaluate only the first N generated entries")
    parser.add_argument("--metrics", help="comma-separated metric names (default all)")
    parser.add_argument("--k", default="1000,10000", help="unique@k sizes (default 1000,10000)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for RDKit work (0: all cores)")
    parser.add_argument("--seed", type=int, default=42, help="seed of GuacaMol's reference subsets (default 42)")
    parser.add_argument("--device", default="cpu", help="where ChemNet runs: cpu, cuda or auto")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached statistics")
    parser.add_argument("-o", "--output", help="write the JSON report here")
    parser.add_argument(
        "--preset", help="crystals: coverage cutoffs perov-5, carbon-24 or mp-20 (default from --ref's name)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.core.device import select_device
    from molgen.datasets.readers import require_output_suffix
    from molgen.metrics import metric_names
    from molgen.workflows.crystal_evaluation import looks_like_crystal_file
    from molgen.workflows.peptide_evaluation import looks_like_fasta

    if args.output:  # crystal and peptide reports are JSON too
        require_output_suffix(args.output, (".json",), "report")
    if looks_like_crystal_file(args.generated):
        return evaluate_crystals(args)
    if looks_like_fasta(args.generated):
        return evaluate_peptides(args)

    try:
        k = tuple(int(part) for part in args.k.split(",") if part.strip())
    except ValueError:
        raise MolgenError(f"--k must be comma-separated integers, got {args.k!r}") from None
    if not k or min(k) < 1:
        raise MolgenError("--k needs positive integers")
    metrics = None
    if args.metrics:
        metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
        unknown = [name for name in metrics if name not in metric_names(k)]
        if unknown:
            raise MolgenError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(metric_names(k))}")
    if args.jobs < 0:
        raise MolgenError("--jobs must be >= 0")
    report = evaluate_file(
        args.generated,
        reference=None if args.no_ref else (args.ref or DEFAULT_REFERENCE),
        training=None if args.no_train else (args.train or DEFAULT_TRAINING),
        reference_required=args.ref is not None,
        training_required=args.train is not None,
        n=args.n,
        metrics=metrics,
        k=k,
        n_jobs=args.jobs,
        use_cache=not args.no_cache,
        seed=args.seed,
        device=str(select_device(args.device)),
        output=args.output,
        progress=not quiet(args),
    )
    meta = report.metadata
    summary = f"{meta['n']:,} generated entries, {meta['n_valid']:,} valid, {meta['n_unique']:,} distinct valid"
    return print_report(report, summary, meta["total_seconds"], args.output)


def print_report(report, summary: str, seconds: float, output: str | None) -> int:
    print(summary)
    print(report.format_table())
    print(f"total {seconds:.1f} s")
    if output:
        print(f"report: {output}")
    return 0


def evaluate_crystals(args: argparse.Namespace) -> int:
    from molgen.workflows.crystal_evaluation import evaluate_crystal_file

    if args.jobs < 0:
        raise MolgenError("--jobs must be >= 0")
    report = evaluate_crystal_file(
        args.generated,
        reference=None if args.no_ref else args.ref,
        training=None if args.no_train else args.train,
        preset=args.preset,
        n=args.n,
        n_jobs=args.jobs,
        use_cache=not args.no_cache,
        seed=args.seed,
        output=args.output,
    )
    meta = report.metadata
    seconds = meta.get("seconds", {}).get("total", 0.0)
    return print_report(report, f"{meta['n_generated']:,} generated crystals, {meta.get('n_valid', 0):,} valid", seconds, args.output)


def evaluate_peptides(args: argparse.Namespace) -> int:
    from molgen.workflows.peptide_evaluation import (
        DEFAULT_PEPTIDE_REFERENCE,
        DEFAULT_PEPTIDE_TRAINING,
        evaluate_peptide_file,
    )

    report = evaluate_peptide_file(
        args.generated,
        reference=None if args.no_ref else (args.ref or DEFAULT_PEPTIDE_REFERENCE),
        training=None if args.no_train else (args.train or DEFAULT_PEPTIDE_TRAINING),
        reference_required=args.ref is not None,
        training_required=args.train is not None,
        n=args.n,
        seed=args.seed,
        output=args.output,
    )
    meta = report.metadata
    summary = f"{meta['n_generated']:,} generated sequences, {meta['n_valid']:,} valid, {meta['n_distinct']:,} distinct valid"
    return print_report(report, summary, meta["seconds"], args.output)
