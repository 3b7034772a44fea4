"""PMO and GuacaMol goal-directed benchmarks of ``molgen optimize``.

PMO (Gao et al. 2022): each task gets an oracle budget (10,000 calls), the
figure is the area under the top-10 mean curve (logged every 100 calls),
compared with REINVENT's published per-task AUC. GuacaMol v2 (Brown et al.
2019): the task score (mean of top-x means) over every molecule the run
scored, next to Graph GA and SMILES LSTM.

Results are appended task by task to the JSON in --results (a killed
benchmark keeps what it finished) and printed as a markdown table.

Usage:
    python benchmarks/bench_pmo.py --suite pmo --tasks qed,median1 --seeds 0 --budget 10000
    python benchmarks/bench_pmo.py --suite guacamol --tasks celecoxib_rediscovery --budget 5000
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import time
from datetime import date
from pathlib import Path

import torch

from molgen.scoring.named import GUACAMOL_V2, PMO_TASKS, guacamol_task_score
from molgen.workflows.optimization import optimize

HERE = Path(__file__).resolve().parent
MINIMUM_PMO = "qed,celecoxib_rediscovery,osimertinib_mpo,median1,scaffold_hop,isomers_c9h10n2o2pf2cl"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {torch.get_num_threads()} threads, {gpu}"


def run_task(args, task: str, seed: int) -> dict:
    out = Path(args.out) / args.suite / f"{task}-seed{seed}"
    settings = {
        "prior": args.prior,
        "objective": f"{args.suite}/{task}",
        "seed": seed,
        "device": args.device,
        "campaign": {"budget": args.budget, "batch_size": args.batch_size, "diversity": {"kind": args.diversity_filter},
                     "converged_patience": args.patience or None},
        "strategy": {"sigma": args.sigma, "learning_rate": args.lr, "replay_capacity": args.replay,
                     "likelihood_penalty": args.likelihood_penalty, "replay_weighting": args.replay_weighting,
                     "augmentation_rounds": args.augmentation_rounds},
    }
    resume = (out / "optimize.json").is_file()
    if resume and (out / "summary.json").is_file() and not args.rerun:
        summary = json.loads((out / "summary.json").read_text())
    else:
        summary = optimize(settings, out, resume=resume, progress=args.progress).summary
    row = {
        "suite": args.suite, "task": task, "seed": seed, "budget": args.budget,
        "auc_top10": summary["auc_top10"], "top1": summary["top1"], "top10": summary["top10"], "top100": summary["top100"],
        "calls": summary["calls"], "steps": summary["steps"], "seconds": summary["seconds"],
        "valid_fraction": summary["valid_fraction"], "stop_reason": summary["stop_reason"],
    }
    if args.suite == "guacamol":
        with sqlite3.connect(out / "candidates.sqlite") as con:
            totals = [t for (t,) in con.execute("SELECT total FROM candidates")]
        row["guacamol_score"] = guacamol_task_score(task, [float("nan") if t is None else t for t in totals])
    return row


def table(rows: list[dict], suite: str) -> str:
    refs = json.loads((HERE / "reference_scores.json").read_text())
    if suite == "pmo":
        ref = refs["pmo_top10_auc_reinvent"]["values"]
        lines = ["| task | seed | molgen top-10 AUC | REINVENT (published) | top-1 | top-10 | calls | valid | minutes |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['task']} | {r['seed']} | {r['auc_top10']:.3f} | {ref.get(r['task'], float('nan')):.3f} | "
                         f"{r['top1']:.3f} | {r['top10']:.3f} | {int(r['calls'])} | {r['valid_fraction']:.2f} | {r['seconds'] / 60:.1f} |")
    else:
        g = refs["guacamol_v2_goal_directed"]
        lines = ["| task | seed | molgen score | Graph GA | SMILES LSTM | calls | minutes |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['task']} | {r['seed']} | {r['guacamol_score']:.3f} | {g['graph_ga'][r['task']]:.3f} | "
                         f"{g['smiles_lstm'][r['task']]:.3f} | {int(r['calls'])} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["pmo", "guacamol"], default="pmo")
    parser.add_argument("--tasks", default=MINIMUM_PMO, help="comma-separated task names, or 'all'")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--budget", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prior", default="zinc250k")
    parser.add_argument("--sigma", type=float, default=60.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--replay", type=int, default=100)
    parser.add_argument("--likelihood-penalty", type=float, default=0.0,
                        help="REINVENT 1.0's mean(-1 / log p_agent) weight (PMO's REINVENT: 5000)")
    parser.add_argument("--replay-weighting", choices=["uniform", "score"], default="uniform",
                        help="replay draws uniform or proportional to score (PMO's REINVENT: score)")
    parser.add_argument("--augmentation-rounds", type=int, default=0,
                        help="Augmented Memory rounds per batch (randomized SMILES of batch and replay; 0: REINVENT)")
    parser.add_argument("--diversity-filter", default="murcko", choices=["murcko", "generic", "off"])
    parser.add_argument("--patience", type=int, default=5,
                        help="PMO's early stop: top-100 unchanged for this many steps after 1,000 calls (0: off)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="benchmarks/out/runs", help="run directories (resumed when present)")
    parser.add_argument("--results", default=None, help="JSON of results (default benchmarks/results/<suite>.json)")
    parser.add_argument("--rerun", action="store_true", help="ignore finished runs in --out")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()

    names = PMO_TASKS if args.suite == "pmo" else tuple(GUACAMOL_V2)
    tasks = list(names) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in names]
    if unknown:
        parser.error(f"unknown {args.suite} task(s): {', '.join(unknown)}")
    results_path = Path(args.results or HERE / "results" / f"{args.suite}.json")
    results_path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(results_path.read_text()) if results_path.is_file() else {"rows": []}
    record.update({
        "machine": _machine(), "date": date.today().isoformat(), "prior": args.prior, "budget": args.budget,
        "batch_size": args.batch_size, "sigma": args.sigma, "lr": args.lr, "replay": args.replay, "likelihood_penalty": args.likelihood_penalty,
        "replay_weighting": args.replay_weighting, "diversity_filter": args.diversity_filter, "patience": args.patience,
        "augmentation_rounds": args.augmentation_rounds,
    })
    for seed in [int(s) for s in args.seeds.split(",")]:
        for task in tasks:
            t0 = time.perf_counter()
            row = run_task(args, task, seed)
            record["rows"] = [r for r in record["rows"] if (r["task"], r["seed"], r["budget"]) != (task, seed, args.budget)] + [row]
            results_path.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{task} seed {seed}: {json.dumps({k: row[k] for k in row if k not in ('suite', 'task', 'seed')})} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = [r for r in record["rows"] if r["budget"] == args.budget and r["task"] in tasks]
    print(table(rows, args.suite))
    if args.suite == "pmo":
        print(f"sum over {len(rows)} runs: molgen {sum(r['auc_top10'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
