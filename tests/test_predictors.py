"""Learned property predictors: featurisation, learning, uncertainty, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, RDConfig

from molgen.core.errors import ConfigError, DataError, MolgenError, RegistryError
from molgen.predictors.base import Predictor
from molgen.predictors.metrics import calibration_report, mae, rmse, roc_auc
from molgen.predictors.mol_features import (
    ATOM_FEATURE_DIM,
    BOND_FEATURE_DIM,
    BOND_STEREO,
    BOND_TYPES,
    mol_to_graph,
    mols_to_batch,
)
from molgen.predictors.molecules import FingerprintMLP, MPNNPredictor
from molgen.predictors.registry import PREDICTORS, load_predictor

N_MOLS = 400
N_TRAIN = 320
RING_N = Chem.MolFromSmarts("[#7;R]")

# Small, fast settings; the defaults (hidden 300, 5 members) are for real use.
FAST_MPNN = dict(hidden=64, ffn_hidden=64, n_models=2, epochs=30, lr=3e-3)
FAST_FP = dict(hidden=128, counts=True, n_models=2, epochs=30, lr=3e-3, dropout=0.1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Run this module single-threaded: the graphs are tiny, so a second
    intra-op thread gains nothing, and when the other core is busy its
    spin-waiting made training ~40x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def nci():
    """400 small NCI molecules shipped with RDKit (3-20 heavy atoms) and their Crippen logP."""
    RDLogger.DisableLog("rdApp.*")
    mols = []
    with open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi") as handle:
        for line in handle:
            mol = Chem.MolFromSmiles(line.split()[0]) if line.strip() else None
            if mol is not None and 3 <= mol.GetNumHeavyAtoms() <= 20:
                mols.append(mol)
            if len(mols) == N_MOLS:
                break
    RDLogger.EnableLog("rdApp.*")
    logp = np.array([Crippen.MolLogP(m) for m in mols])
    return mols, logp


@pytest.fixture(scope="module")
def regressors(nci):
    """Both predictors fitted on the first 320 molecules' logP (~2 s each)."""
    mols, logp = nci
    # Sum pooling suits logP, which Crippen computes as a sum of atom contributions.
    return {
        "mpnn": MPNNPredictor(aggregation="sum", **FAST_MPNN).fit(mols[:N_TRAIN], logp[:N_TRAIN]),
        "fingerprint-mlp": FingerprintMLP(**FAST_FP).fit(mols[:N_TRAIN], logp[:N_TRAIN]),
    }


# ----------------------------------------------------------------------------- featurisation


def _check_reverse_edges(graph) -> None:
    src, dst = graph.edge_index
    reverse = torch.arange(src.shape[0]) ^ 1
    assert torch.equal(src[reverse], dst) and torch.equal(dst[reverse], src)
    assert torch.equal(graph.edge_attr[reverse], graph.edge_attr)


def test_featurise_bondless_ionic_and_stereo_molecules():
    methane = mol_to_graph(Chem.MolFromSmiles("C"))
    assert methane.x.shape == (1, ATOM_FEATURE_DIM)
    assert methane.edge_index.shape == (2, 0) and methane.edge_attr.shape == (0, BOND_FEATURE_DIM)

    salt = mol_to_graph(Chem.MolFromSmiles("[Na+].[Cl-]"))
    assert salt.num_nodes == 2 and salt.edge_index.shape[1] == 0
    assert not torch.equal(salt.x[0], salt.x[1])  # different element and charge

    trans = mol_to_graph(Chem.MolFromSmiles("F/C=C/F"))
    cis = mol_to_graph(Chem.MolFromSmiles("F/C=C\\F"))
    stereo_cols = slice(len(BOND_TYPES) + 2, len(BOND_TYPES) + 2 + len(BOND_STEREO))
    assert trans.edge_attr[:, stereo_cols].sum() > 0
    assert not torch.equal(trans.edge_attr, cis.edge_attr)
    _check_reverse_edges(trans)

    left, right = (mol_to_graph(Chem.MolFromSmiles(s)) for s in ("C[C@@H](N)C(=O)O", "C[C@H](N)C(=O)O"))
    assert not torch.equal(left.x, right.x)  # chirality tag is featurised

    batch = mols_to_batch([Chem.MolFromSmiles(s) for s in ("C", "[Na+].[Cl-]", "c1ccncc1", "CCO")])
    assert batch.num_graphs == 4 and batch.x.shape[0] == 1 + 2 + 6 + 3
    assert batch.edge_index.shape[1] == 2 * (6 + 2)
    assert torch.isfinite(batch.x).all()
    _check_reverse_edges(batch)


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("name", ["mpnn", "fingerprint-mlp"])
def test_regression_beats_mean_baseline(nci, regressors, name):
    mols, logp = nci
    mean, std = regressors[name].predict(mols[N_TRAIN:])
    baseline = rmse(logp[N_TRAIN:], np.full(len(mols) - N_TRAIN, logp[:N_TRAIN].mean()))
    error = rmse(logp[N_TRAIN:], mean)
    print(f"{name}: test RMSE {error:.3f}, MAE {mae(logp[N_TRAIN:], mean):.3f}, mean baseline {baseline:.3f}, ratio {error / baseline:.2f}")
    assert error < 0.7 * baseline
    assert mean.shape == std.shape == (len(mols) - N_TRAIN,)
    assert regressors[name].fit_report_["val_source"] == "internal-split"


def test_ensemble_std_varies_and_calibration_is_finite(nci, regressors):
    mols, logp = nci
    mean, std = regressors["mpnn"].predict(mols[N_TRAIN:])
    assert (std > 0).all() and np.ptp(std) > 0
    report = calibration_report(logp[N_TRAIN:], mean, std)
    print("mpnn calibration:", report)
    assert set(report) == {"spearman", "within_1std", "within_2std", "mean_std", "n"}
    assert all(np.isfinite(v) for v in report.values())
    assert 0 <= report["within_1std"] <= report["within_2std"] <= 1


def test_std_is_scaled_only_from_enough_validation_rows(nci, regressors):
    mols, logp = nci
    scaled = regressors["fingerprint-mlp"].fit_report_
    assert scaled["std_scale_rows"] == [32] and scaled["std_scale"][0] != 1.0
    small = FingerprintMLP(task="regression", **FAST_FP).fit(mols[:100], logp[:100])  # 10 validation rows
    assert small.fit_report_["std_scale_rows"] == [10] and small.fit_report_["std_scale"] == [1.0]


def test_binary_classification_learns_ring_nitrogen(nci):
    mols, _ = nci
    labels = np.array([float(m.HasSubstructMatch(RING_N)) for m in mols])
    model = MPNNPredictor(task="classification", **FAST_MPNN).fit(mols[:N_TRAIN], labels[:N_TRAIN])
    prob, std = model.predict(mols[N_TRAIN:])
    auc = roc_auc(labels[N_TRAIN:], prob)
    print(f"ring-N classification: held-out ROC-AUC {auc:.3f} ({int(labels.sum())} positives of {len(labels)})")
    assert auc > 0.8
    assert ((prob >= 0) & (prob <= 1)).all() and (std >= 0).all()


def test_multitask_classification_masks_nan_labels(nci):
    mols, _ = nci
    mols = mols[:120]
    labels = np.array([[m.HasSubstructMatch(RING_N), m.GetNumHeavyAtoms() > 10] for m in mols], dtype=float)
    labels[::3, 0] = np.nan
    labels[1::3, 1] = np.nan
    labels[5] = np.nan  # all-NaN row: dropped and counted
    model = FingerprintMLP(task="classification", hidden=32, n_models=2, epochs=3, val_fraction=0.0).fit(mols, labels)
    assert model.fit_report_["n_dropped_all_nan"] == 1 and model.fit_report_["n_train"] == 119
    prob, std = model.predict(mols[:10])
    assert prob.shape == std.shape == (10, 2) and np.isfinite(prob).all()

    # The loss equals the loss over the present labels only.
    outputs = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    targets = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    present = torch.nn.functional.binary_cross_entropy_with_logits(outputs[~targets.isnan()], targets[~targets.isnan()])
    assert torch.allclose(model._loss(outputs, targets), present)


def test_mc_dropout_gives_spread_for_a_single_member(nci):
    mols, logp = nci
    model = FingerprintMLP(hidden=32, n_models=1, epochs=2, mc_dropout_samples=4, dropout=0.2).fit(mols[:60], logp[:60])
    mean, std = model.predict(mols[60:70])
    assert (std > 0).all()
    again, _ = model.predict(mols[60:70])
    assert np.array_equal(mean, again)  # seeded dropout passes


# ----------------------------------------------------------------------------- persistence and contract


@pytest.mark.parametrize("name", ["mpnn", "fingerprint-mlp"])
def test_save_load_round_trip_and_none_rows(nci, regressors, tmp_path, name):
    mols, _ = nci
    model = regressors[name]
    directory = model.save(tmp_path / name)
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    raw = (directory / "config.json").read_bytes()
    config = json.loads(raw.decode("utf-8"))
    assert config["predictor"] == name and config["params"]["task"] == "regression"
    assert b"pickle" not in raw and b"\x80" not in raw

    queries = [mols[N_TRAIN], None, Chem.MolFromSmiles("[Na+].[Cl-]"), Chem.MolFromSmiles("C"), None]
    mean, std = model.predict(queries)
    for loaded in (load_predictor(directory), Predictor.load(directory), PREDICTORS[name].load(directory)):
        assert type(loaded) is type(model)
        loaded_mean, loaded_std = loaded.predict(queries)
        assert np.array_equal(mean, loaded_mean, equal_nan=True) and np.array_equal(std, loaded_std, equal_nan=True)
    assert np.isnan(mean[[1, 4]]).all() and np.isnan(std[[1, 4]]).all()
    assert np.isfinite(mean[[0, 2, 3]]).all()


def test_load_rejects_unknown_or_mismatched_predictors(regressors, tmp_path):
    directory = regressors["fingerprint-mlp"].save(tmp_path / "fp")
    with pytest.raises(MolgenError):
        MPNNPredictor.load(directory)
    config = json.loads((directory / "config.json").read_text())
    config["predictor"] = "no-such-model"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(RegistryError):
        load_predictor(directory)


def test_bad_settings_and_inputs_raise_clear_errors(nci):
    mols, logp = nci
    with pytest.raises(ConfigError, match="task type"):
        MPNNPredictor(task="ranking")
    with pytest.raises(ConfigError):
        FingerprintMLP(n_models=0)
    with pytest.raises(ConfigError):
        MPNNPredictor(aggregation="max")
    model = FingerprintMLP(task="classification", hidden=8, n_models=1, epochs=1)
    with pytest.raises(DataError):
        model.fit(mols[:20], np.arange(20))  # labels must be 0/1
    with pytest.raises(DataError):
        model.fit([*mols[:5], None], np.zeros(6))
    with pytest.raises(DataError):
        model.fit(mols[:5], np.zeros(4))
    with pytest.raises(RuntimeError):
        FingerprintMLP().predict(mols[:2])


def test_seeds_make_fits_identical(nci):
    mols, logp = nci
    settings = dict(hidden=16, ffn_hidden=16, n_models=2, epochs=2, dropout=0.1)
    first, second, other = (MPNNPredictor(seed=s, **settings).fit(mols[:80], logp[:80]) for s in (7, 7, 8))
    mean_a, std_a = first.predict(mols[80:100])
    mean_b, std_b = second.predict(mols[80:100])
    assert np.array_equal(mean_a, mean_b) and np.array_equal(std_a, std_b)
    assert not np.array_equal(mean_a, other.predict(mols[80:100])[0])
    assert first.fit_report_ == second.fit_report_


# ----------------------------------------------------------------------------- metrics


def test_metrics():
    assert rmse([1.0, 2.0, np.nan], [2.0, 4.0, 0.0]) == pytest.approx(np.sqrt(2.5))
    assert mae([1.0, 2.0], [2.0, 4.0]) == pytest.approx(1.5)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    labels = np.array([[0, 1], [1, 1], [np.nan, 1], [1, 1]])
    scores = np.array([[0.1, 0.2], [0.9, 0.3], [0.0, 0.4], [0.8, 0.5]])
    assert roc_auc(labels, scores) == pytest.approx(1.0)  # task 2 has one class: skipped
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    report = calibration_report([0.0, 1.0, 2.0, 3.0], [0.1, 1.5, 2.0, 5.0], [0.2, 0.4, 0.1, 1.0])
    assert report["within_1std"] == pytest.approx(0.5) and report["within_2std"] == pytest.approx(1.0)
    assert report["spearman"] == pytest.approx(1.0) and report["mean_std"] == pytest.approx(0.425)
