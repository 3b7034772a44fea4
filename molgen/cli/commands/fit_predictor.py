"""``molgen fit-predictor``: train a property predictor with uncertainty."""

from __future__ import annotations

import argparse

from molgen.core.errors import MolgenError
from molgen.cli.common import quiet

NAME = "fit-predictor"
#: Owns a run directory (--out): --resume/--overwrite and the lock apply.
RUN_DIR = True
#: Gets -q/--quiet (it shows progress bars).
QUIET = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``fit-predictor`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "fit-predictor", help="train a property predictor with uncertainty (deep ensemble)",
        description="Train a learned property predictor (D-MPNN or fingerprint MLP for molecules, CGCNN for crystals) "
        "as a deep ensemble on a seeded train/validation/test split (scaffold split for molecules by default), save it "
        "(config.json + model.safetensors + predictor.json) and print the held-out metrics. Unparsable entries are "
        "skipped and counted; rows without a target value are dropped and counted.",
    )
    parser.add_argument("--data", required=True, help="registered data set (esol, lipo, bbbp, perov-5, ...) or a CSV/SDF path (SD properties as targets)")
    parser.add_argument("--target", required=True, action="append", help="target column (repeat for multi-task)")
    parser.add_argument("--domain", default="smiles", help="smiles (default) or crystal")
    parser.add_argument("--model", help="mpnn (default for molecules), fingerprint-mlp, cgcnn (crystals)")
    parser.add_argument("--task", choices=["regression", "classification"], help="default: classification for 0/1 targets")
    parser.add_argument("--split", choices=["scaffold", "random"], help="default: scaffold for molecules, random otherwise")
    parser.add_argument("--n-models", type=int, default=5, help="ensemble members (default 5)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per member (default 30)")
    parser.add_argument("--limit", type=int, help="seeded random subset of the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="predictor directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.predictors import fit_predictor

    if args.n_models < 1 or args.epochs < 1:
        raise MolgenError("--n-models and --epochs must be >= 1")
    summary = fit_predictor(
        args.data, args.target, args.out, domain=args.domain, model=args.model, task=args.task, split=args.split,
        seed=args.seed, limit=args.limit, hparams={"n_models": args.n_models, "epochs": args.epochs}, progress=not quiet(args),
    )
    r = summary.report
    print(f"{r['predictor']} ({r['task']}) on {r['n_train']}/{r['n_val']}/{r['n_test']} train/val/test ({r['split']} split); "
          f"skipped {r['n_invalid_skipped']} invalid entries, dropped {r['n_missing_targets_dropped']} rows without targets")
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in r["test"].items()))
    print(f"predictor: {summary.out_dir}")
    return 0
