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
        description="Train a learned property predictor (D-MPNN, fingerprint MLP or descriptor random forest for molecules, "
        "CGCNN for crystals) on a seeded train/validation/test split (scaffold split for molecules by default), save it "
        "(config.json + model.safetensors + predictor.json) and print the held-out metrics. Molecular predictors are "
        "calibrated on new scaffolds (validation split, or scaffold cross-validation with --cv-folds): they report an "
        "applicability domain, a calibrated std and conformal intervals. Unparsable entries are "
        "skipped and counted; rows without a target value are dropped and counted.",
    )
    parser.add_argument("--data", required=True, help="registered data set (esol, lipo, bbbp, perov-5, ...) or a CSV/SDF path (SD properties as targets)")
    parser.add_argument("--target", required=True, action="append", help="target column (repeat for multi-task)")
    parser.add_argument("--domain", default="smiles", help="smiles (default) or crystal")
    parser.add_argument("--model", help="mpnn (default for molecules), fingerprint-mlp, descriptor-forest, consensus (mean of "
                        "descriptor-forest and mpnn with RDKit descriptors), cgcnn (crystals), or auto (lowest scaffold-CV RMSE of descriptor-forest and mpnn with RDKit descriptors)")
    parser.add_argument("--task", choices=["regression", "classification"], help="default: classification for 0/1 targets")
    parser.add_argument("--split", choices=["scaffold", "random"], help="default: scaffold for molecules, random otherwise")
    parser.add_argument("--n-models", type=int, help="ensemble members of a neural model (default 5)")
    parser.add_argument("--epochs", type=int, help="training epochs per member of a neural model (default 30)")
    parser.add_argument("--descriptors", action="store_true", help="mpnn: append normalised RDKit 2D descriptors to the learned embedding")
    parser.add_argument("--coverage", type=float, default=0.9, help="nominal coverage of the conformal intervals (default 0.9)")
    parser.add_argument("--cv-folds", type=int, default=0, help="calibrate (and, with --model auto, select) by scaffold k-fold "
                        "cross-validation over train+validation, then refit on both (default 0: calibrate on the validation "
                        "split; 5 with --model auto)")
    parser.add_argument("--no-calibration", action="store_true", help="save the bare model (no domain, intervals or calibration)")
    parser.add_argument("--limit", type=int, help="seeded random subset of the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where neural models train: cpu (default), auto (CUDA when present) or cuda[:N]")
    parser.add_argument("--out", required=True, help="predictor directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.predictors import fit_predictor

    if (args.n_models is not None and args.n_models < 1) or (args.epochs is not None and args.epochs < 1):
        raise MolgenError("--n-models and --epochs must be >= 1")
    if not 0 < args.coverage < 1:
        raise MolgenError(f"--coverage must be between 0 and 1, got {args.coverage}")
    hparams = {k: v for k, v in (("n_models", args.n_models), ("epochs", args.epochs)) if v is not None}
    if args.descriptors:
        hparams["descriptors"] = True
    summary = fit_predictor(
        args.data, args.target, args.out, domain=args.domain, model=args.model, task=args.task, split=args.split,
        seed=args.seed, limit=args.limit, hparams=hparams, progress=not quiet(args),
        calibrate=not args.no_calibration, coverage=args.coverage, cv_folds=args.cv_folds, device=args.device,
    )
    r = summary.report
    print(f"{r['predictor']} ({r['task']}) on {r['n_train']}/{r['n_val']}/{r['n_test']} train/val/test ({r['split']} split); "
          f"skipped {r['n_invalid_skipped']} invalid entries, dropped {r['n_missing_targets_dropped']} rows without targets")
    if r.get("model_selection"):
        print("scaffold-CV RMSE: " + ", ".join(f"{k} {v['cv_rmse']:.4f}" for k, v in r["model_selection"].items()))
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in r["test"].items()))
    print(f"predictor: {summary.out_dir}")
    return 0
