"""``molgen evaluate``: distribution metrics of generated objects."""

from __future__ import annotations

import argparse

from molgen.cli.common import quiet
from molgen.core.errors import MolgenError
from molgen.workflows.evaluation import DEFAULT_REFERENCE, DEFAULT_TRAINING

NAME = "evaluate"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: Gets --precision (bf16 autocast of its inference; see molgen.core.device.autocast).
PRECISION = True
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
    parser.add_argument("--executor", choices=["process", "serial", "ray"], default="process",
                        help="where the RDKit/pymatgen work runs: process (a local pool of --jobs, default), serial, or "
                        "ray (the cluster at $RAY_ADDRESS, else a local instance of --jobs CPUs)")
    parser.add_argument("--seed", type=int, default=42, help="seed of GuacaMol's reference subsets and of --relax-sample (default 42)")
    parser.add_argument("--device", default="cpu", help="where ChemNet runs: cpu, cuda or auto")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached statistics")
    parser.add_argument("-o", "--output", help="write the JSON report here")
    parser.add_argument(
        "--preset", help="crystals: coverage cutoffs perov-5, carbon-24 or mp-20 (default from --ref's name)"
    )
    parser.add_argument("--sun", action="store_true",
                        help="crystals: S.U.N. rate instead (stable, unique, novel after CHGNet relaxation against a "
                        "convex hull of known phases; needs chgnet and --train) and the generated-to-relaxed RMSD")
    parser.add_argument("--hull", default="mp20-biternary",
                        help="with --sun: comma-separated registered data sets whose phases make the hull "
                        "(default mp20-biternary)")
    parser.add_argument("--relax-sample", type=int, metavar="K",
                        help="with --sun: relax only a seeded random sample of K valid structures (--seed) and estimate "
                        "the stable and S.U.N. rates from it, with 95%% intervals; uniqueness and novelty are then "
                        "judged before relaxation (default: relax all)")
    parser.add_argument("--e-hull-threshold", type=float, default=0.1,
                        help="with --sun: eV/atom above the hull still called stable (default 0.1)")
    return parser


def _run_sun(args: argparse.Namespace) -> int:
    import json

    from molgen.workflows.sun import evaluate_sun, read_crystals

    if not args.train:
        raise MolgenError("--sun needs --train (the generator's training set, e.g. mp20-biternary-train) for novelty")
    structures, unparsable = read_crystals(args.generated, args.n)
    report = evaluate_sun(structures, args.train, hull_sources=[s.strip() for s in args.hull.split(",") if s.strip()],
                          threshold=args.e_hull_threshold, jobs=max(1, args.jobs), relax_sample=args.relax_sample,
                          seed=args.seed,
                          progress=None if quiet(args) else (lambda message: print(f"... {message}", flush=True)))
    report["unparsable"] = unparsable
    rows = report.pop("rows")
    print(json.dumps(report, indent=1))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({**report, "rows": rows}, handle, indent=1)
        print(f"report: {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.datasets.readers import require_output_suffix
    from molgen.workflows.evaluators import EvaluationRequest, evaluate_any_file

    if args.output:  # crystal and peptide reports are JSON too
        require_output_suffix(args.output, (".json",), "report")
    if args.sun:
        return _run_sun(args)
    try:
        k = tuple(int(part) for part in args.k.split(",") if part.strip())
    except ValueError:
        raise MolgenError(f"--k must be comma-separated integers, got {args.k!r}") from None
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    result = evaluate_any_file(EvaluationRequest(
        args.generated, reference=args.ref, training=args.train, use_reference=not args.no_ref,
        use_training=not args.no_train, n=args.n, metrics=metrics, k=k, jobs=args.jobs, executor=args.executor, seed=args.seed,
        device=args.device, use_cache=not args.no_cache, output=args.output, preset=args.preset,
        progress=not quiet(args),
    ))
    print(result.summary)
    print(result.report.format_table())
    print(f"total {result.seconds:.1f} s")
    if args.output:
        print(f"report: {args.output}")
    return 0
