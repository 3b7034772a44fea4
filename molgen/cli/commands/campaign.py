"""``molgen campaign``: ask/tell campaigns whose measurements come from a lab."""

from __future__ import annotations

import argparse
import json

NAME = "campaign"
#: (option naming the output file, options naming what the command reads).
OUTPUT = ("output", ("campaign", "results"))


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``campaign`` and its actions on ``sub`` and return the parser."""
    parser = sub.add_parser(
        "campaign", help="lab-in-the-loop campaigns: ask for a batch, tell the measurements, repeat",
        description="An ask/tell campaign proposes batches for a lab to measure, records the answers whenever they "
        "arrive (late, repeated or out of order), and learns from the measurements only. Everything is in the "
        "campaign's directory (candidates.sqlite): kill any command at any moment and nothing told is lost, nothing "
        "pending is asked again as new.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="create a campaign", description="Create a campaign (nothing is asked yet).")
    new.add_argument("--generator", default="zinc250k", help="shipped model name (default zinc250k) or a model/run directory")
    new.add_argument("--objective", help="cheap fidelity and filters applied before asking: objective name or TOML file")
    new.add_argument("--budget", type=int, required=True, help="candidates the lab will measure in all")
    new.add_argument("--batch-size", type=int, help="candidates per ask by default (24)")
    new.add_argument("--pool-size", type=int, help="proposals drawn from the generator per ask (1000)")
    new.add_argument("--acquisition", choices=["ucb", "thompson", "greedy", "random"], help="batch selection (ucb)")
    new.add_argument("--beta", type=float, help="UCB exploration weight (2)")
    new.add_argument("--max-similarity", type=float, help="Tanimoto cap inside a batch (0.7; 1: off)")
    new.add_argument("--prescreen-fraction", type=float, help="keep this best share of the pool by the objective's score (1)")
    new.add_argument("--minimize", action="store_true", help="lower measured values are better")
    new.add_argument("--no-learn", action="store_true", help="keep the generator fixed (the surrogate still learns)")
    new.add_argument("--seed", type=int, default=0, help="seed of sampling and selection (default 0)")
    new.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    new.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                     help="the generator's sampling and learning forward passes: auto (bf16 on CUDA, float32 on CPU; "
                     "default), bf16 or fp32")
    new.add_argument("--out", required=True, help="campaign directory")
    new.add_argument("--overwrite", action="store_true", help="replace a campaign in --out")

    ask = actions.add_parser("ask", help="propose the next batch", description="Propose the next batch and mark it pending.")
    ask.add_argument("campaign", help="campaign directory")
    ask.add_argument("-n", type=int, help="batch size (default: the campaign's)")
    ask.add_argument("-o", "--output", required=True, help=".csv or .sdf for the lab (ids, structures, predictions, why)")
    ask.add_argument("--request-id", help="asking again with the same id returns the same batch (safe retries)")

    tell = actions.add_parser("tell", help="record measurements", description="Record a lab's answers: a .csv with "
                              "columns id and value (or error for a failed measurement), or an .sdf with those properties. "
                              "Rows with neither are skipped; answers already recorded are ignored; a bad row rejects the file.")
    tell.add_argument("campaign", help="campaign directory")
    tell.add_argument("results", help=".csv/.tsv/.sdf with id, value, error")

    status = actions.add_parser("status", help="budget, counts and best values")
    status.add_argument("campaign", help="campaign directory")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    report = actions.add_parser("report", help="export the measured candidates and an HTML report")
    report.add_argument("campaign", help="campaign directory")
    report.add_argument("-o", "--output", required=True, help=".html report, or .csv/.sdf of every asked candidate")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the action; returns the exit code."""
    from molgen.workflows import lab

    if args.action == "new":
        return _new(args, lab)
    with lab.open_campaign(args.campaign, command=f"molgen campaign {args.action}") as campaign:
        if args.action == "ask":
            batch = campaign.ask(args.n, request=args.request_id)
            lab.write_batch(batch, args.output, molecules=campaign.molecules)
            print(f"asked {len(batch)} candidates (batch {batch[0].batch if batch else '-'}): {args.output}; "
                  f"{campaign.remaining_budget()} of {campaign.config.budget} left in the budget")
        elif args.action == "tell":
            from molgen.loops.asktell import measurements_from_rows

            report = campaign.tell(measurements_from_rows(lab.read_answers(args.results), source=args.results))
            print(f"recorded {report.recorded} answers ({report.failed} failed), {report.duplicates} already recorded; "
                  f"{report.measured} measured in all, {report.pending} pending, {report.remaining_budget} left in the budget")
        elif args.action == "status":
            _print_status(campaign.status(), args.json)
        else:
            path = lab.write_campaign_report(campaign, args.output)
            print(f"campaign report: {path}")
    return 0


def _new(args: argparse.Namespace, lab) -> int:
    from molgen.core.outputs import prepare_run_dir

    if args.overwrite:
        prepare_run_dir(args.out, overwrite=True, kind="campaign")
    options = {"batch_size": args.batch_size, "pool_size": args.pool_size, "acquisition": args.acquisition, "beta": args.beta,
               "max_similarity": args.max_similarity, "prescreen_fraction": args.prescreen_fraction}
    campaign = {"budget": args.budget, "seed": args.seed, "maximize": not args.minimize, "learn": not args.no_learn,
                **{k: v for k, v in options.items() if v is not None}}
    settings = lab.new_campaign(args.out, {"generator": args.generator, "objective": args.objective, "device": args.device, "precision": args.precision,
                                           "campaign": campaign})
    print(f"campaign in {args.out}: generator {settings.generator}, budget {settings.campaign.budget}, "
          f"{settings.campaign.batch_size} per ask; next: molgen campaign ask {args.out} -o batch.csv")
    return 0


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    print(f"budget {status['budget']}: asked {status['asked']} ({status['pending']} pending, {status['measured']} measured, "
          f"{status['failed']} failed), {status['remaining_budget']} left; generator learned from {status['learned_from']}")
    if status["best"] is None:
        print("no measurements yet")
        return
    best = status["best"]
    print(f"best {best['value']:.4g} ({best['id']}, {best['text']}); top-10 mean {status['top10_mean']:.4g}")
    print("batch  asked  measured  failed  pending  best_so_far  top10_so_far")
    for row in status["per_batch"]:
        best_so_far = "" if row["best_so_far"] is None else f"{row['best_so_far']:.4g}"
        top10 = "" if row["top10_mean_so_far"] is None else f"{row['top10_mean_so_far']:.4g}"
        print(f"{row['batch']:>5}  {row['asked']:>5}  {row['measured']:>8}  {row['failed']:>6}  {row['pending']:>7}  {best_so_far:>11}  {top10:>12}")
