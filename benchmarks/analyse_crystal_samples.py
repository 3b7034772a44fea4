"""Where a crystal generator's density distance comes from.

Reads the samples that ``bench_graph_diffusion.py`` saves
(``perov5<suffix>_samples.json``, a JSON list of CIF texts) and compares them
with ``perov-5-test`` / ``perov-5-train``:

* the density distance on all samples and on several random draws of 1,000
  (CDVAE's protocol scores one such draw, so the spread is its noise);
* mass and volume per atom, and the volume per atom of samples whose reduced
  formula is in the training split against that formula's training cells
  (separates "wrong cell for the composition" from "wrong compositions");
* element frequencies, generated against training, sorted by the difference.

Usage:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/analyse_crystal_samples.py \\
        benchmarks/out/graph_diffusion_ema/perov5_ema_n10000_c1_T1.25_samples.json
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from molgen.core.errors import ParseError
from molgen.datasets import load_texts
from molgen.domains.crystal import CrystalDomain


def element_fractions(structures) -> dict[str, float]:
    counts: collections.Counter = collections.Counter()
    for s in structures:
        for element, amount in s.composition.items():
            counts[element.symbol] += amount
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def analyse(samples_path: Path, draws: int = 8, seed: int = 0, top: int = 10) -> dict:
    domain = CrystalDomain()
    generated = []
    for text in json.loads(samples_path.read_text()):
        if not text:
            continue
        try:
            generated.append(domain.parse(text))
        except ParseError:  # an unparsable sample simply does not count here
            continue
    test = [domain.parse(t) for t in load_texts("perov-5-test", domain).texts]
    train = [domain.parse(t) for t in load_texts("perov-5-train", domain).texts]
    gen_density = np.array([s.density for s in generated])
    test_density = np.array([s.density for s in test])
    rng = np.random.default_rng(seed)
    k = min(1000, len(generated))
    w1_draws = [float(wasserstein_distance(gen_density[rng.choice(len(generated), k, replace=False)], test_density))
                for _ in range(draws)]
    volume_by_formula: dict[str, list[float]] = {}
    for s in train:
        volume_by_formula.setdefault(s.composition.reduced_formula, []).append(s.volume / len(s))
    ratios = [(s.volume / len(s)) / np.mean(volume_by_formula[s.composition.reduced_formula])
              for s in generated if s.composition.reduced_formula in volume_by_formula]
    gen_frac, train_frac = element_fractions(generated), element_fractions(train)
    order = sorted(set(gen_frac) | set(train_frac), key=lambda e: gen_frac.get(e, 0) - train_frac.get(e, 0))
    per_atom = lambda ss, f: float(np.mean([f(s) / len(s) for s in ss]))  # noqa: E731
    return {
        "samples": str(samples_path),
        "n_parsed": len(generated),
        "density_mean": {"generated": float(gen_density.mean()), "test": float(test_density.mean()),
                         "train": float(np.mean([s.density for s in train]))},
        "w1_density_all": float(wasserstein_distance(gen_density, test_density)),
        "w1_density_draws_of_1000": [round(w, 3) for w in w1_draws],
        "mass_per_atom": {"generated": per_atom(generated, lambda s: s.composition.weight), "test": per_atom(test, lambda s: s.composition.weight)},
        "volume_per_atom": {"generated": per_atom(generated, lambda s: s.volume), "test": per_atom(test, lambda s: s.volume)},
        "same_formula_volume_ratio": {"n": len(ratios), "mean": float(np.mean(ratios)) if ratios else None,
                                      "median": float(np.median(ratios)) if ratios else None},
        # "generated % / training %" of all atoms
        "under_sampled": {e: f"{100 * gen_frac.get(e, 0):.2f} / {100 * train_frac.get(e, 0):.2f}" for e in order[:top]},
        "over_sampled": {e: f"{100 * gen_frac.get(e, 0):.2f} / {100 * train_frac.get(e, 0):.2f}" for e in order[::-1][:top]},
        "distinct_formulas": len({s.composition.reduced_formula for s in generated}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples", nargs="+", type=Path, help="*_samples.json files")
    parser.add_argument("--out", type=Path, default=None, help="write the analyses as JSON here")
    args = parser.parse_args()
    results = [analyse(p) for p in args.samples]
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
