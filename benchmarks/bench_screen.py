"""Retrospective active-learning screening benchmark (MolPAL protocol).

The oracle is a table lookup of the Enamine 10k library's AutoDock Vina
scores (``enamine10k-docking``; lower binds better). Start from a random 1 %,
acquire 1 % per round for 5 rounds (6 % of the library scored), and report
the fraction of the true top-1 % (by docking score) found, per acquisition
function and surrogate, over several seeds.

Usage:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/bench_screen.py --seeds 0,1,2 \
        --runs random,mpnn:greedy,mpnn:ucb,fingerprint-mlp:greedy
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.loops.screen import ScreenConfig, screen
from molgen.predictors.registry import PREDICTORS
from molgen.scoring import Objective, Term, build_component

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", default="random,mpnn:greedy,mpnn:ucb,fingerprint-mlp:greedy",
                        help="comma-separated 'random' or 'MODEL:ACQUISITION'")
    parser.add_argument("--n-models", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--out", default="benchmarks/out/screen")
    parser.add_argument("--results", default=str(HERE / "results" / "screen.json"))
    args = parser.parse_args()

    domain = SmilesDomain()
    loaded = load_texts("enamine10k-docking", domain, on_invalid="skip")
    scores = {domain.key(domain.parse(t)): v for t, v in zip(loaded.texts, loaded.targets["score"])}
    ranked = sorted(scores, key=lambda k: scores[k])
    top = set(ranked[: int(round(0.01 * len(ranked)))])
    objective = Objective([Term(build_component("table", {"source": "enamine10k-docking", "column": "score"}), 1.0)], name="vina")
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.machine())  # noqa: E741
    record.update({"machine": f"{cpu}, {torch.get_num_threads()} torch threads", "date": date.today().isoformat(),
                   "library": len(scores), "top_1_percent": len(top), "protocol": "1% random start + 5 x 1% acquisitions (6%)"})
    for seed in [int(s) for s in args.seeds.split(",")]:
        for spec in [r.strip() for r in args.runs.split(",") if r.strip()]:
            model, acquisition = ("none", "random") if spec == "random" else spec.split(":")
            config = ScreenConfig(init_fraction=0.01, batch_fraction=0.01, rounds=5, acquisition=acquisition, beta=args.beta,
                                  maximize=False, seed=seed)

            def make(rnd, model=model, seed=seed):
                return PREDICTORS[model](task="regression", n_models=args.n_models, epochs=args.epochs, seed=seed * 100 + rnd)

            out = Path(args.out) / f"{spec.replace(':', '-')}-seed{seed}"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            t0 = time.perf_counter()
            result = screen(loaded.texts, domain, objective, make, out, config)
            found = [len(top & set(result.acquired[: r["calls"]])) / len(top) for r in result.rounds]
            row = {"run": spec, "seed": seed, "calls": result.calls, "found_top1pct": found[-1], "found_by_round": found,
                   "seconds": time.perf_counter() - t0, "n_models": args.n_models, "epochs": args.epochs}
            record["rows"] = [r for r in record["rows"] if (r["run"], r["seed"]) != (spec, seed)] + [row]
            path.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{spec} seed {seed}: top-1% found {found[-1]:.3f} by round {[round(f, 3) for f in found]} "
                  f"({row['seconds']:.0f} s)", flush=True)
    by_run: dict[str, list] = {}
    for r in record["rows"]:
        by_run.setdefault(r["run"], []).append(r["found_top1pct"])
    for run, values in by_run.items():
        print(f"{run}: {100 * np.mean(values):.1f} % +- {100 * np.std(values):.1f} of the top-1 % over {len(values)} seeds")


if __name__ == "__main__":
    main()
