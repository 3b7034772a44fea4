"""``molgen demo``: the main job on the shipped model."""

from __future__ import annotations

import argparse

from molgen.cli.common import quiet

NAME = "demo"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "demo", help="the main job on the shipped model: sample, evaluate, optimise, report",
        description="Sample the shipped ZINC250k prior, evaluate the samples, steer the prior toward a PMO task "
        "(osimertinib MPO) for a few hundred oracle calls and write one HTML report of it all. Needs nothing but "
        "the installed package; a few minutes on 2 CPU cores.",
    )
    parser.add_argument("--out", default="runs/demo", help="demo directory (default runs/demo)")
    parser.add_argument("-n", type=int, default=1000, help="molecules sampled (default 1000)")
    parser.add_argument("--budget", type=int, default=300, help="oracle calls of the optimisation (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.demo import run_demo

    result = run_demo(args.out, n_samples=args.n, budget=args.budget, seed=args.seed, progress=not quiet(args),
                      overwrite=args.overwrite)
    f, t = result.figures, result.seconds
    print(f"prior samples: validity {f['validity']:.3f}, uniqueness {f['uniqueness']:.3f}"
          + (f", internal diversity {f['IntDiv']:.3f}" if "IntDiv" in f else "") + f" ({t['sample']:.0f} s)")
    print(f"optimisation: top-1 {f['top1']:.3f}, top-10 {f['top10']:.3f} after {int(f['calls'])} oracle calls ({t['optimize']:.0f} s)")
    print(f"files: {result.samples}, {result.evaluation}, {result.optimize_dir}/")
    print(f"report: {result.report}  (open it in a browser)")
    return 0
