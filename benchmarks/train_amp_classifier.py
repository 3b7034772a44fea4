"""Train the shipped AMP classifier and score it next to the composition
baseline on the held-out test split of ``amp`` (stratified 60/20/20, seed 42).

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/train_amp_classifier.py \\
        --out molgen/pretrained/data/predictors/amp_classifier --results benchmarks/results/amp_classifier.json
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

from molgen.datasets import load_texts
from molgen.domains.protein import ProteinDomain
from molgen.predictors.peptides import AMPClassifier, CompositionBaseline
from molgen.predictors.metrics import roc_auc


def split(name: str) -> tuple[list[str], list[int]]:
    loaded = load_texts(name, ProteinDomain())
    return loaded.texts, [int(v) for v in loaded.targets["label"]]


def scores(labels, proba) -> dict:
    return {"roc_auc": round(roc_auc(labels, proba), 4), "accuracy": round(float(np.mean((np.asarray(proba) >= 0.5) == np.asarray(labels))), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="molgen/pretrained/data/predictors/amp_classifier")
    parser.add_argument("--results", default="benchmarks/results/amp_classifier.json")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    train, val, test = split("amp-train"), split("amp-val"), split("amp-test")
    start = time.perf_counter()
    model = AMPClassifier(epochs=args.epochs, seed=args.seed).fit(*train, val=val)
    seconds = time.perf_counter() - start
    model.metrics.update({"test": scores(test[1], model.predict_proba(test[0])), "train_seconds": round(seconds, 1),
                          "data": "amp-train / amp-val (epoch selection) / amp-test, stratified 60/20/20 seed 42"})
    model.save(args.out)
    baseline = CompositionBaseline().fit(*train)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seed": args.seed,
        "n": {"train": len(train[0]), "val": len(val[0]), "test": len(test[0])},
        "classifier": {"test": model.metrics["test"], "val_roc_auc": round(model.metrics["val_roc_auc"], 4), "train_seconds": round(seconds, 1)},
        "baseline_composition_logreg": {"test": scores(test[1], baseline.predict_proba(test[0]))},
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
