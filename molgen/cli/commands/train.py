"""``molgen train``: train a generator on a data set."""

from __future__ import annotations

import argparse

from molgen.cli.common import quiet

NAME = "train"
#: Owns a run directory (--out): --resume/--overwrite and the lock apply.
RUN_DIR = True
#: An interrupted run continues with --resume.
RESUMABLE = True
#: Gets -q/--quiet (it shows progress bars).
QUIET = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "train",
        help="train a generator on a data set",
        description="Train a generator. Settings come from --config (TOML with sections data, model, "
        "train) and are overridden by the flags given. The run directory gets model/, checkpoint/, "
        "train_log.csv and run.json.",
    )
    parser.add_argument("--domain", help="object domain (default smiles)")
    parser.add_argument("--backbone", help="generative backbone (default autoregressive)")
    parser.add_argument("--data", help="registered data set name (see `molgen datasets`) or a .smi/.csv/.sdf path")
    parser.add_argument("--limit", type=int, help="train on a seeded random subset of N entries")
    parser.add_argument("--config", help="TOML file of settings; unknown keys are errors")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, help="stop after N optimisation steps")
    budget.add_argument("--max-minutes", type=float, help="stop after M minutes of training")
    parser.add_argument("--seed", type=int, help="seed of subset, split, initialisation and batches")
    parser.add_argument("--batch-size", type=int, help="sequences per step")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--device", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--skip-invalid", action="store_true", help="skip unparsable entries instead of failing")
    parser.add_argument(
        "--on-unknown-token", choices=["error", "unk"], help="with --init-from: fail on, or map to <unk>, tokens outside the vocabulary"
    )
    parser.add_argument("--augment", action="store_true", help="augmentation each draw: randomized SMILES; for crystals a random translation and site order")
    parser.add_argument("--init-from", help="saved model directory to fine-tune")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="run directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.core.config import validate
    from molgen.workflows.training import RunConfig, apply_overrides, run_training

    overrides = {
        "domain": args.domain,
        "backbone": args.backbone,
        "seed": args.seed,
        "device": args.device,
        "init_from": args.init_from,
        "data.source": args.data,
        "data.limit": args.limit,
        "data.on_invalid": "skip" if args.skip_invalid else None,
        "data.on_unknown_token": args.on_unknown_token,
        "data.augment": True if args.augment else None,
        "train.batch_size": args.batch_size,
        "train.lr": args.lr,
        "train.max_steps": args.max_steps,
        "train.max_minutes": args.max_minutes,
        "train.progress": False if quiet(args) else None,
    }
    if args.config:
        config = RunConfig.from_toml(args.config, **overrides)
    else:
        config = validate(RunConfig, apply_overrides({}, overrides))
    if args.max_minutes is not None:  # a budget given on the command line replaces the file's
        config.train.max_steps = None
    if args.max_steps is not None:
        config.train.max_minutes = None
    summary = run_training(config, args.out, resume=args.resume, log=print)
    r = summary.result
    print(
        f"trained {summary.n_parameters:,} parameters for {r.steps} steps in {r.elapsed_s:.0f} s "
        f"on {summary.n_train:,} training / {summary.n_val:,} validation examples"
    )
    val = f"{r.val_loss:.4f}" if r.val_loss is not None else "n/a"
    print(f"train loss {r.train_loss:.4f}, validation loss {val}, {r.tokens_per_s:,.0f} tokens/s")
    print(f"model: {summary.model_dir}")
    print(f"log: {summary.out_dir / 'train_log.csv'}")
    return 0
