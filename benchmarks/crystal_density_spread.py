"""How noisy is the density distance? CDVAE's W1 of density is computed on
1,000 valid samples drawn at random; this script reports, for each file of
generated crystal texts (``molgen sample`` .txt or the bench_crystals
``samples_*.txt``, blank-line separated), the distance over all valid samples
and the mean and spread over ``--draws`` random 1,000-sample subsets.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/crystal_density_spread.py \
        benchmarks/out/crystals_ar_ema2500/samples_T1.0.txt --reference perov-5-test
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import wasserstein_distance

from molgen.datasets import load_texts
from molgen.domains.crystal import CrystalDomain
from molgen.domains.crystal.validity import composition_is_valid, structure_is_valid


def valid_densities(texts: list[str], domain: CrystalDomain) -> np.ndarray:
    """Densities (g/cm^3) of the structurally and compositionally valid texts."""
    out = []
    for text in texts:
        structure = domain.codec.decode(text)
        if structure is not None and structure_is_valid(structure) and composition_is_valid(structure.composition):
            out.append(structure.density)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--reference", default="perov-5-test")
    parser.add_argument("--subset", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    domain = CrystalDomain()
    # The reference as evaluate_crystals uses it: every crystal of the set, from its
    # compact text (lengths rounded like the samples').
    reference = [domain.codec.decode(t).density for t in load_texts(args.reference, domain).texts]
    for path in args.files:
        texts = [t for t in open(path).read().split("\n\n") if t.strip()]
        densities = valid_densities(texts, domain)
        rng = np.random.default_rng(args.seed)
        draws = [wasserstein_distance(rng.choice(densities, args.subset, replace=False), reference) for _ in range(args.draws)]
        print(json.dumps({"file": path, "valid": len(densities), "w1_all_valid": round(wasserstein_distance(densities, reference), 4),
                          f"w1_{args.subset}_mean": round(float(np.mean(draws)), 4), f"w1_{args.subset}_sd": round(float(np.std(draws)), 4)}))


if __name__ == "__main__":
    main()
