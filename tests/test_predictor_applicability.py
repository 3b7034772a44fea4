"""Issue 35: the descriptor forest, applicability domain, calibrated
intervals, scaffold cross-validation and their use in objectives."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from rdkit import Chem, RDConfig
from rdkit.Chem import Crippen

from molgen.cli.main import main
from molgen.core.errors import CheckpointError, ConfigError, DataError
from molgen.predictors.calibrated import CalibratedPredictor
from molgen.predictors.domain import ApplicabilityDomain, LatentDomain
from molgen.predictors.forest import ForestPredictor, forest_features
from molgen.predictors.metrics import rmse
from molgen.predictors.registry import load_predictor
from molgen.predictors.selection import _scaffold, cross_validate, fit_calibrated, scaffold_folds


def _nci(n: int, offset: int = 0) -> tuple[list[Chem.Mol], np.ndarray]:
    """Small NCI molecules with their Crippen logP (a real, learnable target)."""
    mols = []
    for line in open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi").read().splitlines()[offset:]:
        mol = Chem.MolFromSmiles(line.split()[0])
        if mol is not None and 4 <= mol.GetNumHeavyAtoms() <= 24:
            mols.append(mol)
        if len(mols) == n:
            break
    return mols, np.array([Crippen.MolLogP(m) for m in mols])


@pytest.fixture(scope="module")
def data():
    return _nci(160)


def test_forest_learns_and_its_exported_trees_match_sklearn(data, tmp_path):
    from sklearn.ensemble import RandomForestRegressor

    mols, y = data
    train, test = slice(0, 120), slice(120, None)
    model = ForestPredictor(n_trees=30, seed=0).fit(mols[train], y[train])
    mean, std = model.predict(mols[test])
    assert rmse(y[test], mean) < 0.6 * rmse(y[test], np.full(40, y[train].mean()))
    assert (std > 0).all()
    reference = RandomForestRegressor(n_estimators=30, max_features=0.3, random_state=0)
    reference.fit(forest_features(mols[train], "descriptors+morgan"), y[train])
    assert np.allclose(reference.predict(forest_features(mols[test], "descriptors+morgan")), mean, atol=1e-9)
    model.save(tmp_path / "rf")
    assert sorted(p.name for p in (tmp_path / "rf").iterdir()) == ["config.json", "model.safetensors"]
    again = load_predictor(tmp_path / "rf")
    assert np.array_equal(again.predict(mols[test] + [None])[0][:-1], mean) and np.isnan(again.predict([None])[0][0])


def test_forest_rejects_bad_input():
    with pytest.raises(ConfigError):
        ForestPredictor(features="pixels")
    with pytest.raises(DataError):
        ForestPredictor(n_trees=2).fit(["CCO", "CCC"], [1.0, 2.0])


def test_domain_similarity_and_threshold(data):
    mols, _ = data
    domain = ApplicabilityDomain().fit(mols[:50])
    sims = domain.similarity([mols[0], Chem.MolFromSmiles("[Cl-].[Na+]"), None])
    assert sims["max"][0] == pytest.approx(1.0) and sims["max"][1] < 0.2 and np.isnan(sims["max"][2])
    domain.fit_threshold(domain.similarity(mols[50:100])["max"])
    assert domain.in_domain(sims["max"]).tolist() == [True, False, False]


def test_scaffold_folds_keep_scaffolds_together(data):
    mols, _ = data
    folds = scaffold_folds(mols, 4, seed=1)
    rows = np.concatenate(folds)
    assert sorted(rows.tolist()) == list(range(len(mols)))
    owner = {}
    for k, fold in enumerate(folds):
        for i in fold:
            assert owner.setdefault(_scaffold(mols[i]), k) == k
    assert max(map(len, folds)) - min(map(len, folds)) < len(mols) // 4


def test_calibrated_intervals_cover_and_grow_out_of_domain(data, tmp_path):
    mols, y = data
    factory = lambda s: ForestPredictor(n_trees=30, seed=s)  # noqa: E731
    cv = cross_validate(factory, mols[:120], y[:120], folds=4, seed=0)
    assert np.isfinite(cv.mean).all() and cv.rmse < np.std(y[:120])
    model = fit_calibrated(factory, mols[:120], y[:120], seed=0, coverage=0.8, cv=cv)
    out = model.predict_intervals(mols[120:] + [Chem.MolFromSmiles("FC(F)(F)C(F)(F)C(F)(F)S(=O)(=O)[O-]")])
    inside = (y[120:] >= out["lower"][:-1, 0]) & (y[120:] <= out["upper"][:-1, 0])
    assert 0.6 <= inside.mean() <= 1.0
    assert out["similarity"][-1] < np.median(out["similarity"][:-1]) and not out["in_domain"][-1]
    a, b, c, e = model.variance_[0]
    assert e == 0  # a forest has no embedding: no latent term
    # the distance term is what lets sigma grow away from the data
    sigma_near = np.sqrt((a * 0.1) ** 2 + (b * 0.2) ** 2 + c ** 2)
    sigma_far = np.sqrt((a * 0.1) ** 2 + (b * 0.9) ** 2 + c ** 2)
    assert sigma_far >= sigma_near
    model.save(tmp_path / "cal")
    again = load_predictor(tmp_path / "cal")
    assert isinstance(again, CalibratedPredictor)
    for key in ("mean", "std", "lower", "upper", "similarity"):
        assert np.allclose(again.predict_intervals(mols[120:])[key], model.predict_intervals(mols[120:])[key], equal_nan=True)


def test_mpnn_with_descriptors_learns_and_reloads(data, tmp_path):
    from molgen.predictors.molecules import MPNNPredictor

    mols, y = data
    model = MPNNPredictor(descriptors=True, hidden=32, ffn_hidden=32, n_models=2, epochs=25, lr=3e-3, seed=0)
    model.fit(mols[:120], y[:120])
    mean, _ = model.predict(mols[120:])
    assert rmse(y[120:], mean) < 0.8 * np.std(y[120:])
    model.save(tmp_path / "m")
    assert np.allclose(load_predictor(tmp_path / "m").predict(mols[120:])[0], mean)


def test_latent_domain_orders_by_distance():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 8))
    domain = LatentDomain(k=5).fit(train)
    near, far = rng.normal(size=(20, 8)), rng.normal(size=(20, 8)) + 6.0
    d_near, d_far = domain.distance(near), domain.distance(far)
    assert 0.5 < np.median(d_near) < 2.0  # about as close as training rows are to each other
    assert d_far.min() > d_near.max()
    assert np.isnan(domain.distance(np.full((1, 8), np.nan)))[0]
    with pytest.raises(DataError):
        LatentDomain().fit(train[:1])


def test_consensus_with_latent_domain_calibrates_saves_and_reloads(data, tmp_path):
    from molgen.predictors.consensus import ConsensusPredictor

    mols, y = data
    consensus = ConsensusPredictor(members=[{"kind": "descriptor-forest", "features": "descriptors", "n_trees": 40},
                                            {"kind": "mpnn", "descriptors": True, "hidden": 32, "ffn_hidden": 32,
                                             "n_models": 2, "epochs": 25, "lr": 3e-3}])
    consensus.fit(mols[:100], y[:100])
    members = [m.predict(mols[120:])[0] for m in consensus.models_]
    mean, std = consensus.predict(mols[120:])
    assert np.allclose(mean, np.mean(members, axis=0))
    assert (std >= np.abs(members[0] - members[1]) / 2 - 1e-9).all()  # disagreement is part of the spread
    assert rmse(y[120:], mean) < 0.8 * np.std(y[120:])
    model = CalibratedPredictor(consensus, coverage=0.8).calibrate(mols[:100], mols[100:], y[100:])
    assert model.latent is not None  # the D-MPNN member's embedding
    odd = Chem.MolFromSmiles("FC(F)(F)C(F)(F)C(F)(F)S(=O)(=O)[O-]")
    out = model.predict_intervals(mols[120:] + [odd])
    assert np.isfinite(out["latent_distance"]).all() and out["latent_distance"][-1] > np.median(out["latent_distance"][:-1])
    assert model.calibration_report_["tasks"][0]["e_latent"] >= 0
    model.save(tmp_path / "cons")
    again = load_predictor(tmp_path / "cons")
    for key in ("mean", "std", "lower", "upper", "latent_distance"):
        assert np.allclose(again.predict_intervals(mols[120:])[key], out[key][:-1], equal_nan=True)
    with pytest.raises(ConfigError, match="at least two"):
        ConsensusPredictor(members=[{"kind": "mpnn"}])
    with pytest.raises(ConfigError, match="trainable predictor"):
        ConsensusPredictor(members=[{"kind": "mpnn"}, {"kind": "nope"}])
    with pytest.raises(CheckpointError, match="does not hold a 'descriptor-forest' predictor"):
        ForestPredictor.load(tmp_path / "cons")  # a calibrated consensus is not a forest
    with pytest.raises(ConfigError, match="no consensus member has a setting bogus"):
        ConsensusPredictor(bogus=1)


def test_cli_consensus_fits_and_predicts_latent_distance(data, tmp_path, capsys):
    mols, y = data
    csv_path = _csv(tmp_path / "d.csv", mols, y)
    out = tmp_path / "cons"
    # --epochs and --n-models reach the D-MPNN member; the forest has neither and is left alone
    assert main(["fit-predictor", "--data", str(csv_path), "--target", "logp", "--model", "consensus",
                 "--epochs", "3", "--n-models", "1", "--out", str(out)]) == 0
    config = json.loads((out / "base" / "config.json").read_text())
    assert config["predictor"] == "consensus" and config["params"]["epochs"] == 3
    inputs = tmp_path / "in.smi"
    inputs.write_text("CCCCCCO\nnot_a_smiles\n")
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert float(rows[0]["latent_distance"]) > 0 and rows[1]["latent_distance"] == "" and rows[1]["reason"]


def _csv(path, mols, y):
    path.write_text("smiles,logp\n" + "".join(f"{Chem.MolToSmiles(m)},{v:.3f}\n" for m, v in zip(mols, y)))
    return path


def test_cli_forest_with_cv_calibration_predict_and_ad_objective(data, tmp_path, capsys):
    from molgen.domains import SmilesDomain
    from molgen.scoring import Objective

    mols, y = data
    csv_path = _csv(tmp_path / "d.csv", mols, y)
    out = tmp_path / "rf"
    assert main(["fit-predictor", "--data", str(csv_path), "--target", "logp", "--model", "descriptor-forest",
                 "--cv-folds", "3", "--coverage", "0.8", "--out", str(out)]) == 0
    report = json.loads((out / "predictor.json").read_text())
    assert report["calibrated"] and report["cv_folds"] == 3 and 0 <= report["test"]["interval_coverage"] <= 1
    inputs = tmp_path / "in.smi"
    inputs.write_text("CCCCCCO\nC1CC\n[Cl-].[Na+]\n")
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert rows[0]["in_domain"] == "true" and rows[2]["in_domain"] == "false" and rows[1]["in_domain"] == ""
    objective = tmp_path / "o.toml"
    objective.write_text(f'[[components]]\ntype = "predictor:{out}"\nname = "ad"\nstatistic = "ad"\n'
                         f'[[components]]\ntype = "predictor:{out}"\nname = "logp"\nrequire_in_domain = true\n')
    parse = SmilesDomain().parse
    table = Objective.from_toml(objective)([parse("CCCCCCO"), parse("[Cl-].[Na+]")])
    assert 0 < table.raw["ad"][0] <= 1 and table.raw["ad"][1] < table.raw["ad"][0]
    assert np.isfinite(table.raw["logp"][0]) and np.isnan(table.raw["logp"][1])
    assert any("out of domain" in (r or "") for r in table.reasons)
    capsys.readouterr()
    # a forest has no epochs: naming one is an error, not silently ignored
    assert main(["fit-predictor", "--data", str(csv_path), "--target", "logp", "--model", "descriptor-forest",
                 "--epochs", "3", "--out", str(tmp_path / "x")]) == 2
    assert "no setting epochs" in capsys.readouterr().err


def test_ad_statistic_needs_a_calibrated_predictor(data, tmp_path):
    from molgen.scoring.learned import PredictorComponent

    mols, y = data
    ForestPredictor(n_trees=5).fit(mols[:40], y[:40]).save(tmp_path / "bare")
    with pytest.raises(ConfigError, match="no applicability domain"):
        PredictorComponent(tmp_path / "bare", statistic="ad")


def test_consensus_candidate_is_validated_from_its_members_out_of_fold_predictions(data):
    from molgen.predictors.consensus import ConsensusPredictor
    from molgen.predictors.selection import combine_cv, select_model

    mols, y = data
    specs = {"desc": {"features": "descriptors", "n_trees": 30}, "morgan": {"features": "morgan", "n_trees": 30}}
    factories = {name: (lambda s, spec=spec: ForestPredictor(seed=s, **spec)) for name, spec in specs.items()}
    results = {name: cross_validate(f, mols, y, folds=3, seed=0) for name, f in factories.items()}
    both = combine_cv(list(results.values()), y)
    assert np.allclose(both.mean, (results["desc"].mean + results["morgan"].mean) / 2)
    assert (both.std >= np.abs(results["desc"].mean - results["morgan"].mean) / 2 - 1e-12).all()
    assert len(both.fold_rmse) == 3 and np.isfinite(both.fold_rmse).all()
    assert np.isclose(both.rmse, rmse(y, both.mean[:, 0]))

    members = [{"kind": "descriptor-forest", **spec} for spec in specs.values()]
    make_consensus = lambda s: ConsensusPredictor(members=members, seed=s)  # noqa: E731
    chosen, model, table = select_model(factories, mols, y, folds=3, seed=0, consensus={"both": (list(specs), make_consensus)})
    assert set(table) == {"desc", "morgan", "both"} and np.isclose(table["both"]["cv_rmse"], both.rmse)
    assert chosen == min(table, key=lambda name: table[name]["cv_rmse"])
    assert isinstance(model.base, ConsensusPredictor) == (chosen == "both")
    assert model.calibration_report_["n_calibration"] == len(mols)
    with pytest.raises(ConfigError, match="needs at least two"):
        select_model(factories, mols, y, folds=3, consensus={"x": (["desc", "nope"], make_consensus)})


def test_cli_auto_weighs_forest_mpnn_and_their_consensus(data, tmp_path):
    mols, y = data
    csv_path = _csv(tmp_path / "d.csv", mols, y)
    out = tmp_path / "auto"
    assert main(["fit-predictor", "--data", str(csv_path), "--target", "logp", "--model", "auto", "--cv-folds", "2",
                 "--epochs", "3", "--n-models", "1", "--out", str(out)]) == 0
    report = json.loads((out / "predictor.json").read_text())
    table = report["model_selection"]
    assert set(table) == {"descriptor-forest", "mpnn", "consensus"}
    assert report["predictor"] == min(table, key=lambda name: table[name]["cv_rmse"])
    assert json.loads((out / "base" / "config.json").read_text())["predictor"] == report["predictor"]


def test_auto_rejects_a_setting_no_candidate_takes_before_cross_validating(data, tmp_path):
    from molgen.workflows.predictors import fit_predictor

    mols, y = data
    with pytest.raises(ConfigError, match="no consensus member has a setting bogus"):
        fit_predictor(str(_csv(tmp_path / "d.csv", mols[:40], y[:40])), ["logp"], tmp_path / "x", model="auto",
                      hparams={"bogus": 1}, cv_folds=2)
    assert not (tmp_path / "x").exists()
