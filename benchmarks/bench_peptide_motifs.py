"""Benchmark: peptides with a fixed motif, autoregressive (forced residues)
and masked diffusion (infilling), against the same models sampled freely.

For each motif and model: ``-n`` motif-constrained samples (validity, motif
satisfaction, uniqueness, novelty against amp-positive-train, AMP fraction
by the shipped classifier) and ``-n`` free samples (how many happen to carry
the motif: what rejection sampling would keep). Models: the shipped ``amp``
autoregressive model and a masked-diffusion model given by ``--md`` (e.g. a
``molgen train --domain protein --backbone masked-diffusion --data
amp-positive-train --max-minutes 6`` run).

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_peptide_motifs.py --md runs/amp-md
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from molgen.backbones.base import Generator
from molgen.domains.peptide_motif import PeptideMotif
from molgen.metrics.peptides import evaluate_peptides
from molgen.workflows.constrained import generate_motif
from molgen.workflows.sampling import resolve_model_dir

#: (motif, length range): a temporin/magainin-like N-terminus, a cationic pair mid-chain, and both.
MOTIFS = [("1:GL", (12, 25)), ("6:KK,13:KK", (15, 30)), ("1:GLL,8:KK,15:W", (18, 30))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--md", help="masked-diffusion peptide model directory (optional)")
    parser.add_argument("--out", default="benchmarks/results/peptide_motifs.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from molgen.datasets.loading import load_texts
    from molgen.domains.protein import ProteinDomain

    training = load_texts("amp-positive-train", ProteinDomain()).texts
    models = {"autoregressive (amp)": Generator.from_pretrained("amp")}
    if args.md:
        models["masked diffusion"] = Generator.from_pretrained(resolve_model_dir(args.md))
    report = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "n": args.n, "seed": args.seed, "results": []}
    for label, model in models.items():
        free = model.sample_texts(args.n, seed=args.seed)
        free_metrics = evaluate_peptides(free, training=training)
        for parts, (low, high) in MOTIFS:
            motif = PeptideMotif.parse(parts, low, high)
            t0 = time.perf_counter()
            result = generate_motif(model, motif, args.n, seed=args.seed)
            seconds = time.perf_counter() - t0
            texts = [r["smiles"] for r in result.rows]
            metrics = evaluate_peptides(texts, training=training)
            row = {"model": label, "motif": parts, "lengths": [low, high], "seconds": seconds,
                   "satisfaction": sum(r["satisfied"] for r in result.rows) / len(result.rows),
                   **{k: metrics.values.get(k) for k in ("valid", "unique", "novelty", "amp_fraction", "diversity")},
                   "free_samples_carrying_motif": sum(motif.satisfied_by(t) for t in free) / len(free),
                   "free_amp_fraction": free_metrics.values.get("amp_fraction")}
            report["results"].append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
