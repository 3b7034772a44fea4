"""``molgen discover``: the materials discovery loop."""

from __future__ import annotations

import argparse

from molgen.cli.common import quiet

NAME = "discover"
#: Owns a run directory (--out): --resume/--overwrite and the lock apply.
RUN_DIR = True
#: An interrupted run continues with --resume.
RESUMABLE = True
#: Gets -q/--quiet (it shows progress bars).
QUIET = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``discover`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "discover", help="materials discovery loop (photovoltaic absorbers by default)",
        description="Rounds of: sample crystals from the generator, decode, dedupe (StructureMatcher), cheap filters "
        "(validity, SMACT, excluded elements, novelty), learned predictors (band gap, formation energy), CHGNet "
        "relaxation of the best few (needs molgen[potential]), store, REINVENT update of the generator. Every "
        "candidate and relaxation is written to RUN/candidates.sqlite as it is made; relaxed structures go to "
        "RUN/relaxed/*.cif and RUN/relaxed.db (ASE database); RUN/rounds.csv has the per-round funnel. A killed run "
        "continues with --resume without re-scoring or re-relaxing anything.",
    )
    parser.add_argument("--preset", default="photovoltaic",
                        help="photovoltaic (default, Perov-5 chemistry), photovoltaic-mp20 (MP-20 binary/ternary chemistry, "
                        "CHGNet convex hull), their -known-gap sanity presets, or a preset TOML")
    parser.add_argument("--generator", help="shipped crystal generator or a model/run directory (default: the preset's; "
                        "perov5 or mp20)")
    parser.add_argument("--rounds", type=int, help="rounds (preset default 10; with --resume: extend to this many)")
    parser.add_argument("--per-round", type=int, help="structures sampled per round (preset default 512)")
    parser.add_argument("--relax-per-round", type=int, help="best new candidates relaxed per round (preset default 16; 0: off)")
    parser.add_argument("--relax-budget", type=int, help="relaxations in the whole run (preset default 200)")
    parser.add_argument("--executor", choices=["serial", "process", "ray"], help="where relaxations run (default process)")
    parser.add_argument("--workers", type=int, help="relaxation workers (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling and replay (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="the generator's sampling and update forward passes: auto (bf16 on CUDA, float32 on CPU; "
                        "default), bf16 or fp32")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--out", required=True, help="run directory")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.core.config import validate
    from molgen.core.seeding import seed_everything
    from molgen.workflows.discovery import DiscoverSettings, discover, load_preset
    from molgen.workflows.training import apply_overrides

    settings = None
    if not args.resume:
        preset = load_preset(args.preset).model_dump(mode="json")
        preset = apply_overrides(preset, {
            "discovery.rounds": args.rounds,
            "discovery.per_round": args.per_round,
            "discovery.relax.per_round": args.relax_per_round,
            "discovery.relax.budget": args.relax_budget,
            "discovery.relax.executor": args.executor,
            "discovery.relax.workers": args.workers,
        })
        raw = {"preset": preset, "seed": args.seed, "device": args.device, "precision": args.precision}
        if args.generator:
            raw["generator"] = args.generator
        settings = validate(DiscoverSettings, raw, where="discover settings")
    seed_everything(args.seed)
    result = discover(settings, args.out, resume=args.resume, rounds=args.rounds if args.resume else None, log=print,
                      progress=not quiet(args))
    s = result.summary
    print(f"{result.rounds} rounds, {s['candidates']} distinct structures scored, {s['relaxations']} relaxed "
          f"({s['stable']} stable); in-window fraction by round: {', '.join(f'{100 * x:.1f} %' for x in s['in_window_fraction_by_round'])}")
    print(f"store: {result.out_dir / 'candidates.sqlite'}; rounds: {result.out_dir / 'rounds.csv'}; selected: {result.out_dir / 'selected.csv'}")
    return 0
