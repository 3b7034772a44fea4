"""Band-gap-conditioned crystal generation: "band gap 1.1-1.8 eV" asked of the generator.

One autoregressive crystal model trained on ``mp20-biternary-train`` with
``--condition-on band_gap`` (10 % null condition, so it also samples
unconditionally); ``--n`` samples each unconditioned and conditioned on
1.1-1.8 eV at guidance 0 and 1 (seed 0). The gap of a sample is predicted by
the MP-20 gap model of ``bench_crystal_predictors.py --save`` (classifier +
non-metal regressor); a hit is a valid structure called a non-metal (P >=
the model's F1-optimal threshold) with a predicted gap in the window.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/molgen train --domain crystal \\
        --data mp20-biternary-train --condition-on band_gap --config cfg.toml --max-minutes 45 --seed 0 \\
        --batch-size 32 --lr 5e-4 --out runs/mp20-gap-ar      # cfg.toml: d_model 192, 4 layers, 6 heads
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conditional_crystals.py runs/mp20-gap-ar/model \\
        runs/predictors/mp20-biternary-gap --n 500
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

WINDOW = (1.1, 1.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("predictor")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/conditional_crystals_mp20.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from molgen.backbones.base import Generator
    from molgen.predictors.registry import load_predictor

    model = Generator.from_pretrained(args.model)
    predictor = load_predictor(args.predictor)
    domain = model.domain
    low, high = WINDOW
    results = {"setup": {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
                         "date": datetime.date.today().isoformat(), "seed": args.seed, "n": args.n,
                         "model": args.model, "predictor": args.predictor, "window_ev": list(WINDOW),
                         "decision_threshold": predictor.decision_threshold}}
    for label, condition, guidance in (("unconditioned", None, None), ("conditioned w=0", {"band_gap": WINDOW}, None),
                                       ("conditioned w=1", {"band_gap": WINDOW}, 1.0)):
        texts = model.sample_texts(args.n, seed=args.seed, condition=condition, guidance=guidance)
        structures = [domain.try_parse(t) if t else None for t in texts]
        valid = [s for s in structures if s is not None and domain.is_valid(s)]
        parts = predictor.predict_parts(valid)
        p, gap = parts["p_nonmetal"], parts["gap_if_nonmetal"]
        nonmetal = p >= predictor.decision_threshold
        hits = nonmetal & (gap >= low) & (gap <= high)
        expected = p * gap
        results[label] = {
            "validity": len(valid) / args.n,
            "hit_rate": float(hits.sum() / args.n),
            "nonmetal_rate": float(nonmetal.sum() / args.n),
            "mean_p_nonmetal": float(p.mean()),
            "expected_gap_mean": float(expected.mean()),
            "expected_gap_median": float(np.median(expected)),
            "unique_formulas": len({s.composition.reduced_formula for s in valid}),
        }
        print(label, json.dumps(results[label]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
