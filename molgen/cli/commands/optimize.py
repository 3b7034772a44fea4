"""``molgen optimize``: goal-directed optimisation under an oracle budget."""

from __future__ import annotations

import argparse
import functools

from molgen.cli.common import quiet
from molgen.cli.overrides import add_config_option, collect_overrides
from molgen.core.config import read_toml
from molgen.core.errors import MolgenError
from molgen.core.seeding import seed_everything
from molgen.loops.latent import LatentSearchConfig
from molgen.loops.reinforce import ReinforceConfig
from molgen.workflows.optimization import OptimizeConfig, optimize
from molgen.workflows.training import apply_overrides

NAME = "optimize"
#: Owns a run directory (--out): --resume/--overwrite and the lock apply.
RUN_DIR = True
#: An interrupted run continues with --resume.
RESUMABLE = True
#: Gets -q/--quiet (it shows progress bars).
QUIET = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``optimize`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "optimize",
        help="steer a prior toward an objective under an oracle budget (REINVENT-style RL)",
        description="Goal-directed optimisation: the agent starts as a copy of the prior and is updated with "
        "REINVENT's prior-regularised loss, with experience replay and a Murcko-scaffold diversity filter. "
        "Every scored molecule is written to RUN/candidates.sqlite as it is scored; the run can be killed at "
        "any moment and continued with --resume (nothing scored is lost or counted twice). The run directory "
        "also gets progress.csv (PMO top-k means and AUC every 100 calls), summary.json and the best "
        "molecules as top100.csv/.sdf.",
    )
    option = functools.partial(add_config_option, parser, model=OptimizeConfig)
    reinvent = functools.partial(add_config_option, parser, model=ReinforceConfig, prefix="strategy.")
    latent = functools.partial(add_config_option, parser, model=LatentSearchConfig, prefix="strategy.")
    option("--prior", path="prior", help="shipped prior (zinc250k, the default) or a model/run directory")
    option("--objective", path="objective", help="objective name (pmo/<task>, guacamol/<task>, qed, ...) or TOML file")
    option("--budget", path="campaign.budget", help="oracle calls: unique valid molecules scored (required unless --resume)")
    option("--batch-size", path="campaign.batch_size", help="molecules sampled per step (default 64)")
    option("--seed", path="seed", help="seed of sampling and replay (default 0)")
    parser.add_argument("--strategy", choices=["reinvent", "latent-cmaes", "latent-gradient"],
                        help="REINVENT on an autoregressive prior (default), or latent-space search on a VAE --prior")
    latent("--start", path="start", help="latent search: data set or file of start molecules (default: prior samples)")
    latent("--start-size", path="start_size", help="latent search: start molecules taken (default 64)")
    reinvent("--sigma", path="sigma",
             help="REINVENT: reward scale of the augmented likelihood (default 60); latent: CMA-ES step (0.5)")
    reinvent("--lr", path="learning_rate", help="agent learning rate (default 5e-4)")
    reinvent("--replay", path="replay_capacity", help="best molecules kept for experience replay (default 100; 0: off)")
    reinvent("--replay-weighting", path="replay_weighting",
             help="draw replayed molecules uniformly (default) or in proportion to their scores (PMO's REINVENT)")
    reinvent("--likelihood-penalty", path="likelihood_penalty",
             help="weight of REINVENT 1.0's mean(-1/log p_agent) term (default 0; PMO's REINVENT: 5000)")
    reinvent("--augmentation-rounds", path="augmentation_rounds",
             help="Augmented Memory: extra policy steps per batch on randomized SMILES of the batch and the "
             "replay memory (default 0: off)")
    reinvent("--scaffold", path="scaffold",
             help="LibInvent-style: propose only decorations of this SMILES scaffold ('*' at each attachment point)")
    option("--diversity-filter", path="campaign.diversity.kind", help="scaffold buckets (default murcko)")
    option("--bucket-size", path="campaign.diversity.bucket_size", help="molecules per scaffold before the penalty (default 25)")
    option("--patience", path="campaign.converged_patience",
           help="PMO's early stop: end when the top-100 is unchanged for this many steps (default off)")
    parser.add_argument("--config", help="TOML with the settings (keys prior, objective, seed, device, [campaign], [strategy])")
    option("--device", path="device", help="auto (CUDA when present), cpu or cuda[:N]")
    option("--precision", path="precision",
           help="REINVENT's sampling and forward passes: auto (bf16 on CUDA, float32 on CPU; default), bf16 or fp32")
    option("--executor", path="oracle.executor",
           help="where the oracle scores each batch: serial (in process, default), process (a local pool of --workers) "
           "or ray ($RAY_ADDRESS, else a local instance); may change on --resume")
    option("--workers", path="oracle.workers", help="oracle pool processes or local Ray CPUs (default 2)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (a larger --budget extends it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="run directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    settings = read_toml(args.config) if args.config else {}
    settings = apply_overrides(settings, {
        **collect_overrides(args),
        "strategy.kind": None if args.strategy is None else args.strategy.split("-")[0],
        "strategy.method": None if args.strategy in (None, "reinvent") else args.strategy.split("-")[1],
    })
    if not args.resume:
        if "objective" not in settings:
            raise MolgenError("--objective is required (a name such as pmo/qed, or a TOML file)")
        if "budget" not in settings.get("campaign", {}):
            raise MolgenError("--budget is required (oracle calls, e.g. 10000)")
    seed_everything(settings.get("seed", 0))
    result = optimize(settings, args.out, resume=args.resume, progress=not quiet(args))
    s = result.summary
    print(f"{result.calls} of {result.budget} oracle calls in {result.steps} steps, {result.seconds:.0f} s ({result.stop_reason})")
    print(f"top-1 {s['top1']:.4f}, top-10 {s['top10']:.4f}, top-100 {s['top100']:.4f}; top-10 AUC {s['auc_top10']:.4f}")
    print(f"store: {result.out_dir / 'candidates.sqlite'}; best: {', '.join(str(result.out_dir / v) for v in s['exports'].values())}")
    return 0
