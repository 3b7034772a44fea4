"""S.U.N. rates on MP-20 binary/ternary chemistry: a generator vs ion substitution.

Same sample count for each method, scored by :func:`molgen.workflows.sun.evaluate_sun`
(CHGNet 0.3.0 relaxation, hull of all ``mp20-biternary`` phases under CHGNet,
stable = e_hull <= 0.1 eV/atom, novelty against ``mp20-biternary-train``):

* each ``--model``: a crystal generator (autoregressive or graph diffusion)
  trained on ``mp20-biternary-train``, sampled unconditionally (a
  conditional model with its null condition; the autoregressive one with
  grammar and site exclusion on); unparsable or invalid samples count as failures;
* ``substitution``: :func:`~molgen.domains.crystal.substitution.substitution_candidates`,
  one-element swaps of training structures to one of the 3 most similar
  elements, new reduced formulas only.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_sun.py \\
        --model runs/mp20-ar --n 100 --jobs 2 --seed 0 --out benchmarks/results/sun_mp20.json

With several generators and a relaxed sample (stable and S.U.N. estimated; see
:func:`molgen.metrics.sun.sun_report`):

    ... bench_sun.py --model ar=runs/mp20-ar/model --model diffusion=runs/mp20-gd/model \
        --n 1000 --relax-sample 150 --jobs 2 --out benchmarks/results/sun_mp20_1000.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True,
                        help="a generator trained on mp20-biternary-train, as LABEL=PATH (a bare PATH is labelled "
                        "'generator'); repeat for several")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-sample", type=int, default=None,
                        help="relax a seeded random sample of K valid structures per method and estimate the stable and "
                        "S.U.N. rates from it (uniqueness and novelty judged on all N before relaxation)")
    parser.add_argument("--parts", default=None, help="comma-separated model labels and/or 'substitution' (default: all)")
    parser.add_argument("--out", default="benchmarks/results/sun_mp20.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from molgen.backbones.base import Generator
    from molgen.datasets.loading import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.domains.crystal.substitution import substitution_candidates
    from molgen.workflows.sampling import resolve_model_dir
    from molgen.workflows.sun import evaluate_sun

    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["setup"] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                        "date": datetime.date.today().isoformat(), "seed": args.seed, "n": args.n,
                        "training": "mp20-biternary-train", "hull": "mp20-biternary (all 7,140 phases, CHGNet)"}
    domain = CrystalDomain()
    models = dict(spec.split("=", 1) if "=" in spec else ("generator", spec) for spec in args.model)
    results["setup"]["relax_sample"] = args.relax_sample
    for part in (args.parts or ",".join([*models, "substitution"])).split(","):
        start = time.perf_counter()
        if part in models:
            model = Generator.from_pretrained(resolve_model_dir(models[part]))
            structures = [s if s is not None and domain.is_valid(s) else None for s in model.sample(args.n, seed=args.seed)]
        elif part == "substitution":
            train = load_texts("mp20-biternary-train", domain, on_invalid="skip", keep_objects=True, targets=()).objects
            structures = substitution_candidates(train, args.n, seed=args.seed)
        else:
            parser.error(f"unknown part {part!r}")
        seconds = time.perf_counter() - start
        report = evaluate_sun(structures, "mp20-biternary-train", jobs=args.jobs, relax_sample=args.relax_sample, seed=args.seed,
                              progress=lambda message: print(f"  [{part}] {message}", flush=True))
        report["generation_seconds"] = round(seconds, 1)
        rows = report.pop("rows")  # per sample, beside the summary: later questions need no new relaxations
        out_path.with_name(f"{out_path.stem}.{part}.rows.json").write_text(json.dumps(rows) + "\n")
        results[part] = report
        print(part, json.dumps({k: v for k, v in report.items() if k != "settings"}), flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
