"""Sampling time of constrained crystal decoding with and without site
exclusion, alternating the two so that machine load hits both alike.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crystal_exclusion_speed.py \\
        --model benchmarks/out/crystals_ar_ema2500/run/model --samples 2000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from molgen.backbones.base import Generator
from molgen.domains.crystal import structure_is_valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a crystal tokens-view model directory")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Generator.from_pretrained(args.model)
    domain = model.domain
    rows = []
    for repeat in range(args.repeats):
        for semantic in (False, True):
            start = time.perf_counter()
            texts = model.sample_texts(args.samples, seed=args.seed, constrained=True, semantic=semantic)
            seconds = time.perf_counter() - start
            structures = [domain.codec.decode(t) for t in texts]
            valid = sum(s is not None and structure_is_valid(s, domain.rules) for s in structures) / len(texts)
            rows.append({"repeat": repeat, "semantic": semantic, "seconds": round(seconds, 2), "structurally_valid": valid})
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
