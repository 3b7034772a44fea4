"""What the CHGNet convex hull is worth: its hull distances of known phases
against the data set's DFT ``e_above_hull``, and the offset between stored
and CHGNet-relaxed geometries.

1. Builds :class:`molgen.physics.hull.ConvexHull` from ``mp20-biternary``
   (all 7,140 phases, CHGNet 0.3.0 energies at the stored DFT geometries,
   CHGNet-relaxed elemental references) and reports, over the phases with a
   DFT value: MAE and Spearman rank correlation of CHGNet vs DFT hull
   distances, the share of each on its hull, and how well "CHGNet e_hull <
   0.1 eV/atom" agrees with "DFT e_hull < 0.1".
2. Relaxes ``--relax-sample`` random phases with CHGNet (FIRE, fmax 0.05,
   200 steps, cell relaxed) and reports how much lower the relaxed energy is
   than the static one: the bias of a relaxed candidate against unrelaxed
   known phases.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_hull.py \\
        --relax-sample 100 --seed 0 --out benchmarks/results/hull_mp20.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="mp20-biternary")
    parser.add_argument("--relax-sample", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/hull_mp20.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from molgen.physics.hull import ConvexHull
    from molgen.physics.relaxation import RelaxSettings, relax_structure

    start = time.perf_counter()
    hull = ConvexHull.from_sources(tuple(args.sources.split(",")),
                                   progress=lambda done, total: print(f"  energies {done}/{total}", flush=True))
    build_seconds = time.perf_counter() - start
    pairs = [(p, d) for p, d in hull.known_phase_distances() if d is not None and p.reference_e_above_hull is not None]
    chgnet = np.array([d for _, d in pairs])
    dft = np.array([p.reference_e_above_hull for p, _ in pairs])
    t = args.threshold
    result = {
        "setup": {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
                  "date": datetime.date.today().isoformat(), "seed": args.seed, "sources": args.sources,
                  "potential": RelaxSettings().model, "known_phases": len(hull.phases),
                  "elements_with_reference": len(hull.references)},
        "build_seconds": round(build_seconds, 1),
        "phases_compared": len(pairs),
        "mae_ev_per_atom": float(np.abs(chgnet - dft).mean()),
        "median_abs_error": float(np.median(np.abs(chgnet - dft))),
        "spearman": spearman(chgnet, dft),
        "on_hull_chgnet": float((chgnet < 1e-6).mean()),
        "on_hull_dft": float((dft < 1e-6).mean()),
        "stable_agreement": {"threshold": t, "both": int(((chgnet < t) & (dft < t)).sum()),
                             "chgnet_only": int(((chgnet < t) & (dft >= t)).sum()),
                             "dft_only": int(((chgnet >= t) & (dft < t)).sum()),
                             "neither": int(((chgnet >= t) & (dft >= t)).sum())},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "setup"}), flush=True)

    if args.relax_sample:
        from molgen.datasets.loading import load_texts
        from molgen.domains.crystal import CrystalDomain

        rng = np.random.default_rng(args.seed)
        by_line = {(p.source, p.line): p for p in hull.phases}
        source = args.sources.split(",")[0]
        loaded = load_texts(source, CrystalDomain(), on_invalid="skip", keep_objects=True, targets=())
        rows = rng.choice(len(loaded.objects), size=min(args.relax_sample, len(loaded.objects)), replace=False)
        offsets, statuses = [], {}
        start = time.perf_counter()
        for i in rows:
            phase = by_line.get((source, int(loaded.lines[i])))
            relaxed = relax_structure({"structure": loaded.objects[i].as_dict(), "settings": {"formation_energy": False}})
            statuses[relaxed["status"]] = statuses.get(relaxed["status"], 0) + 1
            if phase is not None and relaxed.get("energy_per_atom") is not None:
                offsets.append(relaxed["energy_per_atom"] - phase.energy_per_atom)
        offsets = np.array(offsets)
        result["relaxation_offset"] = {
            "phases": len(rows), "statuses": statuses, "seconds": round(time.perf_counter() - start, 1),
            "mean_ev_per_atom": float(offsets.mean()), "median": float(np.median(offsets)),
            "p05": float(np.percentile(offsets, 5)), "min": float(offsets.min()),
        }
        print("relaxation_offset", json.dumps(result["relaxation_offset"]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
