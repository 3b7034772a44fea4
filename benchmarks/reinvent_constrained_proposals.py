"""What constrained decoding changes inside the REINVENT strategy on crystals:
the shipped ``perov5`` generator as prior and agent, ``--rounds`` proposals of
``--per-round`` structures free, under ``ReinforceConfig.constrained`` and
under it with ``semantic`` (site exclusion);
fraction of proposals that parse and that are valid (CDVAE rules), proposal
time and the time of one policy update of 64.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reinvent_constrained_proposals.py
"""

from __future__ import annotations

import argparse
import json
import time

from molgen.backbones.base import Generator
from molgen.domains.crystal.validity import composition_is_valid, structure_is_valid
from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig
from molgen.pretrained import pretrained_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="perov5")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    prior = Generator.from_pretrained(pretrained_dir(args.prior))
    domain = prior.domain
    for constrained, semantic in ((False, False), (True, False), (True, True)):
        config = ReinforceConfig(constrained=constrained, semantic=semantic, update_batch=64)
        strategy = PriorRegularizedRL(prior, config, seed=args.seed)
        start = time.perf_counter()
        texts = [t for _ in range(args.rounds) for t in strategy.propose(args.per_round)]
        propose_s = time.perf_counter() - start
        structures = [domain.codec.decode(t) for t in texts]
        valid = [s is not None and structure_is_valid(s) and composition_is_valid(s.composition) for s in structures]
        batch = strategy.propose(64)
        start = time.perf_counter()
        strategy.update(batch, [None] * len(batch), [0.5] * len(batch))
        print(json.dumps({
            "constrained": constrained, "semantic": semantic, "proposals": len(texts), "propose_s": round(propose_s, 1),
            "parse": round(sum(s is not None for s in structures) / len(texts), 4), "valid": round(sum(valid) / len(texts), 4),
            "update_64_s": round(time.perf_counter() - start, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
