"""Latent-space optimisation of QED through ``molgen optimize`` (issue 7).

Both latent strategies (CMA-ES and gradient ascent through a property head)
run as campaigns on a trained SMILES VAE from a fixed start set: the
``--start-size`` lowest-QED molecules of 2,000 seeded moses-test molecules.
Every unique decoded molecule counts against the budget (start set included).

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 \\
        python benchmarks/bench_latent_opt.py --vae benchmarks/out/backbones/vae/model

The VAE is the one ``bench_backbones.py`` trains (MOSES 50k, 10 CPU minutes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.scoring import get_objective
from molgen.workflows.optimization import optimize

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", default=str(HERE / "out" / "backbones" / "vae" / "model"))
    parser.add_argument("--methods", default="cmaes,gradient")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--start-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "out" / "latent_opt"))
    parser.add_argument("--results", default=str(HERE / "results" / "latent_opt.json"))
    args = parser.parse_args()

    domain = SmilesDomain()
    qed = get_objective("qed")
    pool = load_texts("moses-test", domain, canonicalize=True).texts
    rng = np.random.default_rng(args.seed)
    candidates = [pool[i] for i in rng.choice(len(pool), 2000, replace=False)]
    scores = qed([domain.parse(s) for s in candidates]).total
    start = [candidates[i] for i in np.argsort(scores)[: args.start_size]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start_file = out / "start.smi"
    start_file.write_text("\n".join(start) + "\n")
    record = {"date": date.today().isoformat(), "torch_threads": torch.get_num_threads(), "vae": args.vae,
              "objective": "qed", "budget": args.budget, "batch_size": args.batch_size, "seed": args.seed,
              "start_set": f"the {args.start_size} lowest-QED of 2,000 seeded moses-test molecules",
              "start_best": float(np.max(np.sort(scores)[: args.start_size])), "runs": {}}
    for method in args.methods.split(","):
        run = out / method
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.perf_counter()
        result = optimize({
            "prior": args.vae, "objective": "qed", "seed": args.seed,
            "campaign": {"budget": args.budget, "batch_size": args.batch_size, "diversity": {"kind": "off"}},
            "strategy": {"kind": "latent", "method": method, "start": str(start_file), "start_size": args.start_size},
        }, run)
        s = result.summary
        record["runs"][method] = {k: s[k] for k in ("calls", "steps", "top1", "top10", "top100", "auc_top10", "valid_fraction", "stop_reason")}
        record["runs"][method]["best"] = s["best"][0]
        record["runs"][method]["seconds"] = round(time.perf_counter() - t0, 1)
        print(method, json.dumps(record["runs"][method]), flush=True)
    Path(args.results).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
