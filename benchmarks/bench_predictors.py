"""Property prediction benchmark of the learned molecular predictors.

Each data set is split with the balanced Murcko-scaffold split (80/10/10,
chemprop's ``scaffold_balanced``) for several seeds; the predictor trains on
train, early-stops on validation and is scored on test: RMSE for regression
sets, ROC-AUC for classification sets, plus the calibration of the ensemble
std for regression. Speed: featurisation + inference throughput at batch 512
and seconds per training epoch.

Usage:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/bench_predictors.py --sets esol,lipo,bbbp,bace --seeds 0,1,2
    python benchmarks/bench_predictors.py --sets gsk3b,jnk3 --limit 10000 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.predictors.registry import PREDICTORS
from molgen.workflows.predictors import split_rows, test_metrics

HERE = Path(__file__).resolve().parent
SETS = {"esol": "logp", "freesolv": "freesolv", "lipo": "lipo", "bbbp": "p_np", "bace": "Class", "gsk3b": "gsk3", "jnk3": "jnk3"}


def _machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {torch.get_num_threads()} torch threads, " + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")


def run(args, name: str, seed: int) -> dict:
    domain = SmilesDomain()
    target = SETS[name]
    loaded = load_texts(name, domain, on_invalid="skip", limit=args.limit, seed=0, targets=(target,))
    y = np.asarray(loaded.targets[target], dtype=float)
    keep = np.isfinite(y)
    mols = [domain.parse(t) for t, k in zip(loaded.texts, keep) if k]
    y = y[keep]
    task = "classification" if np.isin(y, (0.0, 1.0)).all() else "regression"
    parts = split_rows(mols, "smiles", "scaffold", seed)
    pick = lambda idx: ([mols[i] for i in idx], y[idx])  # noqa: E731
    model = PREDICTORS[args.model](task=task, seed=seed, n_models=args.n_models, epochs=args.epochs, batch_size=args.batch_size,
                                   lr=args.lr, patience=args.patience)
    t0 = time.perf_counter()
    model.fit(*pick(parts["train"]), val=pick(parts["val"]))
    fit_seconds = time.perf_counter() - t0
    epochs_run = sum(m.get("epochs_run", m.get("epochs", 0)) for m in model.fit_report_["members"])
    test_mols, test_y = pick(parts["test"])
    t0 = time.perf_counter()
    mean, std = model.predict(test_mols, batch_size=512)
    predict_seconds = time.perf_counter() - t0
    row = {
        "set": name, "target": target, "task": task, "seed": seed, "model": args.model, "n_models": args.n_models,
        "n": len(mols), "n_skipped_invalid": len(loaded.skipped), "n_missing_target": int((~keep).sum()),
        "n_train": len(parts["train"]), "n_val": len(parts["val"]), "n_test": len(parts["test"]),
        "fit_seconds": fit_seconds, "epochs_run_total": epochs_run,
        "seconds_per_epoch": fit_seconds / max(1, epochs_run),
        "inference_mol_per_s": len(test_mols) / predict_seconds,
        **test_metrics(task, test_y, mean, std),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="esol,lipo,bbbp,bace")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--model", default="mpnn", choices=sorted(PREDICTORS))
    parser.add_argument("--n-models", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="seeded subset of each set (large sets)")
    parser.add_argument("--results", default=str(HERE / "results" / "predictors.json"))
    parser.add_argument("--throughput", action="store_true", help="also time featurise+predict of 5,000 ZINC-like molecules at batch 512")
    args = parser.parse_args()

    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    record.update({"machine": _machine(), "date": date.today().isoformat(), "split": "balanced scaffold 80/10/10"})
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            row = run(args, name, seed)
            row["limit"] = args.limit
            record["rows"] = [r for r in record["rows"] if (r["set"], r["seed"], r["model"], r.get("limit")) != (name, seed, args.model, args.limit)] + [row]
            path.write_text(json.dumps(record, indent=2) + "\n")
            metric = "rmse" if row["task"] == "regression" else "roc_auc"
            print(f"{name} seed {seed} {args.model}: {metric} {row[metric]:.4f} (fit {row['fit_seconds']:.0f} s, "
                  f"{row['seconds_per_epoch']:.2f} s/epoch, {row['inference_mol_per_s']:.0f} mol/s)", flush=True)
    if args.throughput:
        domain = SmilesDomain()
        texts = load_texts("zinc250k", domain, limit=5000, seed=0).texts
        mols = [domain.parse(t) for t in texts]
        model = PREDICTORS[args.model](task="regression", n_models=1, epochs=1, seed=0)
        model.fit(mols[:500], np.arange(500, dtype=float))
        t0 = time.perf_counter()
        model.predict(mols, batch_size=512)
        seconds = time.perf_counter() - t0
        record["throughput"] = {"model": args.model, "molecules": len(mols), "batch_size": 512, "mol_per_s": len(mols) / seconds,
                                "includes": "featurisation + forward, one ensemble member"}
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"throughput: {len(mols) / seconds:.0f} mol/s (featurise + predict, batch 512, 1 member)")
    rows = [r for r in record["rows"] if r["model"] == args.model]
    by_set: dict[str, list] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r["rmse"] if r["task"] == "regression" else r["roc_auc"])
    for name, values in by_set.items():
        print(f"{name}: {np.mean(values):.4f} +- {np.std(values):.4f} over {len(values)} seeds")


if __name__ == "__main__":
    main()
