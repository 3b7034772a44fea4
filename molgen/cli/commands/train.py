"""``molgen train``: train a generator on a data set."""

from __future__ import annotations

import argparse
import functools

from molgen.cli.common import quiet
from molgen.cli.overrides import add_config_option, collect_overrides
from molgen.core.config import validate
from molgen.workflows.training import RunConfig, apply_overrides, run_training

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
    option = functools.partial(add_config_option, parser, model=RunConfig)
    option("--domain", path="domain", help="object domain (default smiles)")
    option("--backbone", path="backbone", help="generative backbone (default autoregressive)")
    option("--data", path="data.source", help="registered data set name (see `molgen datasets`) or a .smi/.csv/.sdf path")
    option("--limit", path="data.limit", help="train on a seeded random subset of N entries")
    parser.add_argument("--config", help="TOML file of settings; unknown keys are errors")
    budget = parser.add_mutually_exclusive_group()
    option("--max-steps", path="train.max_steps", help="stop after N optimisation steps", group=budget)
    option("--max-minutes", path="train.max_minutes", help="stop after M minutes of training", group=budget)
    option("--seed", path="seed", help="seed of subset, split, initialisation and batches")
    option("--batch-size", path="train.batch_size", help="sequences per step")
    option("--lr", path="train.lr")
    option("--device", path="device", help="auto (CUDA when present), cpu or cuda[:N]")
    option("--precision", path="train.precision",
           help="autocast of the forward pass: auto (bf16 on CUDA, float32 on CPU; default), bf16 or fp32")
    parser.add_argument("--condition-on", metavar="NAMES",
                        help="comma-separated properties to condition an autoregressive model on (molecules: logP, "
                        "QED, SA, weight, computed with RDKit; otherwise columns of the data), for "
                        "`molgen sample --condition NAME=LOW:HIGH --guidance W`")
    parser.add_argument("--skip-invalid", action="store_true", help="skip unparsable entries instead of failing")
    option("--on-unknown-token", path="data.on_unknown_token",
           help="with --init-from: fail on, or map to <unk>, tokens outside the vocabulary")
    parser.add_argument("--augment", action="store_true", help="augmentation each draw: randomized SMILES; for crystals a random translation and site order")
    option("--init-from", path="init_from")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="data-parallel training in N processes on this machine (one per GPU, or CPU processes with "
                        "gloo): launches `torchrun --standalone --nproc-per-node N -m molgen train ...`; the global batch "
                        "stays --batch-size (N shares, plus --micro-batch-size accumulation), and a run resumes with any N")
    option("--micro-batch-size", path="train.micro_batch_size",
           help="rows per forward pass on each process (gradient accumulation within a step)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="run directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.train.distributed import DistributedContext, relaunched

    if relaunched(args, "training", args.out):
        return 0
    overrides = {
        **collect_overrides(args),
        "data.on_invalid": "skip" if args.skip_invalid else None,
        "data.augment": True if args.augment else None,
        "train.progress": False if quiet(args) else None,
        "model.conditions": [n.strip() for n in args.condition_on.split(",") if n.strip()] if args.condition_on else None,
    }
    if args.config:
        config = RunConfig.from_toml(args.config, **overrides)
    else:
        config = validate(RunConfig, apply_overrides({}, overrides))
    if args.max_minutes is not None:  # a budget given on the command line replaces the file's
        config.train.max_steps = None
    if args.max_steps is not None:
        config.train.max_minutes = None
    dist = DistributedContext.from_env()
    summary = run_training(config, args.out, resume=args.resume, log=print if dist.is_main else None)
    dist.shutdown()
    if not dist.is_main:
        return 0
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
