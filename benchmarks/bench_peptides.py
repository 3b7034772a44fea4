"""Peptide generation benchmark: the autoregressive backbone trained on the
antimicrobial peptides of the amp train split, 5,000 samples, scored next to
two baselines (composition-preserving shuffles of training AMPs; random
sequences with the training length distribution and residue frequencies).

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_peptides.py \\
        --minutes 10 --samples 5000 --out benchmarks/out/peptides
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

from molgen.backbones.base import Generator
from molgen.datasets import load_texts
from molgen.domains.protein import AMINO_ACIDS, ProteinDomain
from molgen.metrics.peptides import evaluate_peptides
from molgen.predictors.peptides import AMPClassifier
from molgen.workflows.training import RunConfig, run_training


def shuffled(train: list[str], n: int, rng: np.random.Generator) -> list[str]:
    picks = rng.choice(len(train), n)
    return ["".join(rng.permutation(list(train[i]))) for i in picks]


def random_like(train: list[str], n: int, rng: np.random.Generator) -> list[str]:
    lengths = rng.choice([len(s) for s in train], n)
    joined = "".join(train)
    freq = np.array([joined.count(a) for a in AMINO_ACIDS], dtype=float)
    freq /= freq.sum()
    letters = np.array(list(AMINO_ACIDS))
    return ["".join(rng.choice(letters, size=k, p=freq)) for k in lengths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/out/peptides")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    out = Path(args.out)
    domain = ProteinDomain()
    config = RunConfig.model_validate(dict(
        domain="protein", seed=args.seed, device="cpu",
        data=dict(source="amp-positive-train", val_fraction=0.05),
        model=dict(d_model=args.d_model, n_layers=args.n_layers, n_heads=4, dropout=args.dropout),
        train=dict(batch_size=64, lr=args.lr, warmup_steps=100, max_minutes=args.minutes, val_every=200,
                   checkpoint_every=500, progress=False),
    ))
    summary = run_training(config, out / "run")
    model = Generator.from_pretrained(summary.model_dir)
    start = time.perf_counter()
    generated = model.sample_texts(args.samples, seed=args.seed, temperature=args.temperature)
    sample_seconds = time.perf_counter() - start
    train = load_texts("amp-positive-train", domain).texts
    held_out = load_texts("amp-positive-test", domain).texts
    rng = np.random.default_rng(args.seed)
    classifier = AMPClassifier.load()
    rows = {}
    for name, seqs in (
        ("autoregressive", generated),
        ("shuffled training AMPs", shuffled(train, args.samples, rng)),
        ("random, training lengths and residue frequencies", random_like(train, args.samples, rng)),
        ("held-out AMPs (reference, not generated)", held_out),
    ):
        rows[name] = evaluate_peptides(seqs, held_out, train, classifier=classifier, seed=args.seed).to_dict()
    r = summary.result
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seed": args.seed,
        "training": {"minutes": args.minutes, "steps": r.steps, "train_loss": round(r.train_loss, 4),
                     "val_loss": None if r.val_loss is None else round(r.val_loss, 4), "parameters": summary.n_parameters,
                     "n_train": summary.n_train, "tokens_per_s": round(r.tokens_per_s, 1)},
        "sampling": {"n": args.samples, "seconds": round(sample_seconds, 1), "temperature": args.temperature},
        "classifier": classifier.metrics.get("test"),
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    keys = ["valid", "unique", "novelty", "diversity", "amp_fraction", "amp_probability", "W1/charge_pH7", "W1/length"]
    for name, row in rows.items():
        print(f"{name:50s}", " ".join(f"{k}={row['metrics'][k]:.3f}" if row["metrics"][k] is not None else f"{k}=n/a" for k in keys))


if __name__ == "__main__":
    main()
