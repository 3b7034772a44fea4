"""Molecule metrics checked by hand or against independent RDKit/scipy computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_SMILES
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem
from scipy.stats import wasserstein_distance

from molgen.metrics import (
    FeatureOptions,
    MetricUnavailable,
    MoleculeSet,
    evaluate_molecules,
    fcd,
    filters_fraction,
    fragment_similarity,
    internal_diversity,
    kl_score,
    novelty,
    property_distance,
    scaffold_similarity,
    snn,
    unique_at,
    validity,
)
from molgen.metrics.similarity import (
    max_similarity,
    morgan_bits,
    nearest_neighbour_similarity,
)
from molgen.properties.molecular import qed, sa_score

ASPIRIN, PARACETAMOL = "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1"


def _legacy_fp(smiles: str):
    return AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(smiles), 2, nBits=1024)


def test_validity_and_unique_at_k_count_by_hand():
    gen = ["CCO", "OCC", "garbage", "", "c1ccccc1", "C1CC"]  # OCC is CCO again; C1CC has an open ring
    assert validity(gen) == pytest.approx(3 / 6)
    assert unique_at(gen, 2) == pytest.approx(1 / 2)  # first two valid: CCO, CCO
    assert unique_at(gen, 3) == pytest.approx(2 / 3)
    with pytest.raises(MetricUnavailable, match="only 3 valid molecules, fewer than k=4"):
        unique_at(gen, 4)


def test_morgan_bits_match_rdkit_legacy_fingerprint():
    for smiles in SMALL_SMILES:
        bits = np.unpackbits(morgan_bits(Chem.MolFromSmiles(smiles)))
        assert list(np.flatnonzero(bits)) == list(_legacy_fp(smiles).GetOnBits())


def test_vectorised_tanimoto_matches_rdkit_bulk_similarity():
    query, reference = SMALL_SMILES[:6], SMALL_SMILES[4:]
    packed_q = np.stack([morgan_bits(Chem.MolFromSmiles(s)) for s in query])
    packed_r = np.stack([morgan_bits(Chem.MolFromSmiles(s)) for s in reference])
    ref_fps = [_legacy_fp(s) for s in reference]
    expected = [max(DataStructs.BulkTanimotoSimilarity(_legacy_fp(s), ref_fps)) for s in query]
    np.testing.assert_allclose(max_similarity(packed_q, packed_r), expected, rtol=1e-6)
    all_fps = [_legacy_fp(s) for s in query]
    nearest = [max(DataStructs.BulkTanimotoSimilarity(fp, all_fps[:i] + all_fps[i + 1 :])) for i, fp in enumerate(all_fps)]
    np.testing.assert_allclose(nearest_neighbour_similarity(packed_q), nearest, rtol=1e-6)


def test_internal_diversity_definitions():
    assert internal_diversity(["CCO", "OCC", "CCO"]) == pytest.approx(0.0, abs=1e-7)
    t = DataStructs.TanimotoSimilarity(_legacy_fp(ASPIRIN), _legacy_fp(PARACETAMOL))
    # Pairs (i, j) include i = j, as in MOSES: each row averages 1 and t.
    assert internal_diversity([ASPIRIN, PARACETAMOL]) == pytest.approx(1 - (1 + t) / 2, rel=1e-6)
    assert internal_diversity([ASPIRIN, PARACETAMOL], p=2) == pytest.approx(1 - math.sqrt((1 + t * t) / 2), rel=1e-6)
    # A duplicate counts twice: rows of aspirin average (1 + 1 + t) / 3.
    rows = [(2 + t) / 3, (2 + t) / 3, (2 * t + 1) / 3]
    assert internal_diversity([ASPIRIN, ASPIRIN, PARACETAMOL]) == pytest.approx(1 - np.mean(rows), rel=1e-6)


def test_novelty_compares_canonical_forms():
    train = ["CCO", "c1ccccc1O"]
    assert novelty(["OCC", "Oc1ccccc1"], train) == 0.0  # a training subset, written differently
    assert novelty(["OCC", "CCN", "CCN", "bad"], train) == pytest.approx(1 / 2)


def test_similarity_of_a_set_to_itself():
    assert snn(SMALL_SMILES, SMALL_SMILES) == pytest.approx(1.0)
    assert fragment_similarity(SMALL_SMILES, SMALL_SMILES) == pytest.approx(1.0)
    assert scaffold_similarity(SMALL_SMILES, SMALL_SMILES) == pytest.approx(1.0)
    assert kl_score(SMALL_SMILES, SMALL_SMILES) == pytest.approx(1.0)


def test_fcd_of_a_set_with_itself_is_zero_and_grows_with_difference():
    same = fcd(SMALL_SMILES, SMALL_SMILES)
    assert abs(same) < 1e-3
    assert fcd(["CCCCCCCC", "CCCCCCCCC", "CCCCCCC", "CCCCCCCCCC"], SMALL_SMILES) > 5.0


def test_scaffold_min_rings_is_an_explicit_option():
    one_ring = ["c1ccccc1C", "c1ccccc1CC", "C1CCCCC1O"]
    with pytest.raises(MetricUnavailable, match=">= 2 rings"):
        scaffold_similarity(one_ring, one_ring)
    options = FeatureOptions(scaffold_min_rings=1)
    gen, ref = MoleculeSet(one_ring, options=options), MoleculeSet(["c1ccccc1"], options=options)
    # Scaffolds: benzene x2 and cyclohexane vs benzene x1 -> cos = 2 / sqrt(5).
    assert scaffold_similarity(gen, ref) == pytest.approx(2 / math.sqrt(5))


def test_fragment_counts_by_hand():
    # BRICS cuts aspirin into 4 fragments and paracetamol into 3; they share
    # the acetyl [1*]C(C)=O, so cos = 1 / (sqrt(4) * sqrt(3)).
    assert fragment_similarity([ASPIRIN], [PARACETAMOL]) == pytest.approx(1 / (2 * math.sqrt(3)))
    assert sum(MoleculeSet([ASPIRIN, ASPIRIN]).fragment_counts().values()) == 8


def test_filters_reject_what_moses_rejects():
    passing = ["CC(=O)Nc1ccc(O)cc1", "CCOC(=O)c1ccccc1"]
    failing = [
        "C[N+](C)(C)C",  # charge
        "C1CCCCCCC1",  # ring of 8
        "CCI",  # iodine is not allowed
        "CCCCC(=O)[H]",  # aldehyde (MCF)
        "O=C1C=CC(=O)C=C1",  # quinone (PAINS)
    ]
    assert filters_fraction(passing) == 1.0
    for smiles in failing:
        assert filters_fraction([smiles]) == 0.0, smiles


def test_property_distance_equals_scipy_on_independent_values():
    gen, ref = SMALL_SMILES[:6], SMALL_SMILES[6:]
    expected = wasserstein_distance([qed(Chem.MolFromSmiles(s)) for s in ref], [qed(Chem.MolFromSmiles(s)) for s in gen])
    assert property_distance(gen, ref, "QED") == pytest.approx(expected)
    assert 1.0 <= sa_score(Chem.MolFromSmiles(ASPIRIN)) <= 3.0  # a simple, easy molecule


def test_report_with_no_valid_molecule_gives_nulls_with_reasons():
    report = evaluate_molecules(["xyz", "((", ""], SMALL_SMILES, SMALL_SMILES, k=(2,), cache_root=None)
    assert report.values["valid"] == 0.0
    for name in ("unique@2", "SNN/Test", "IntDiv", "FCD/Test", "Novelty", "KL_score", "logP"):
        assert report.values[name] is None
        assert report.reasons[name]
    empty = evaluate_molecules([], cache_root=None, k=(2,))
    assert empty.values["valid"] is None and "empty" in empty.reasons["valid"]
    assert empty.reasons["SNN/Test"] == "no reference set given"


def test_report_reuses_cached_reference_statistics(tmp_path):
    gen = SMALL_SMILES[:8] + ["bad"]
    first = evaluate_molecules(gen, SMALL_SMILES, SMALL_SMILES, k=(5,), cache_root=tmp_path)
    second = evaluate_molecules(gen, SMALL_SMILES, SMALL_SMILES, k=(5,), cache_root=tmp_path, n_jobs=2)
    assert first.metadata["reference"]["cache_hits"] == []
    assert "fingerprints-r2-1024" in second.metadata["reference"]["cache_hits"]
    assert "canonical-hashes" in second.metadata["training"]["cache_hits"]
    for name, value in first.values.items():
        assert value == pytest.approx(second.values[name], rel=1e-9, abs=1e-9), name
    assert first.values["Novelty"] == 0.0 and first.values["valid"] == pytest.approx(8 / 9)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_molecules(gen, metrics=["FCD"], cache_root=None)


def test_fast_alert_matching_equals_explicit_hydrogen_matching():
    from rdkit.Chem import RDConfig

    from molgen.metrics.filters import matches_alert

    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    smiles = [line.split()[0] for line in path.read_text().splitlines()[:300]]
    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    fast = [matches_alert(m) for m in mols]
    slow = [matches_alert(m, explicit_hydrogens=True) for m in mols]
    assert fast == slow
    assert 10 < sum(fast) < len(mols)  # the sample exercises both outcomes


def test_chunked_activation_statistics_equal_numpy():
    from molgen.metrics import chemnet

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    w = rng.integers(1, 4, size=40)
    original = chemnet._STATS_CHUNK
    try:
        chemnet._STATS_CHUNK = 7  # force several chunks
        mu, sigma = chemnet.activation_statistics(x, w)
    finally:
        chemnet._STATS_CHUNK = original
    np.testing.assert_allclose(mu, np.average(x.astype(np.float64), axis=0, weights=w), rtol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(x.T.astype(np.float64), fweights=w), rtol=1e-9, atol=1e-12)


def test_unavailable_default_reference_is_recorded_not_raised(tmp_path):
    from molgen.core.errors import MolgenError
    from molgen.workflows.evaluation import evaluate_file, load_optional_set

    generated = tmp_path / "gen.smi"
    generated.write_text("CCO\nc1ccccc1O\n")
    report = evaluate_file(generated, reference="no-such-set", training=None, metrics=["valid", "SNN/Test", "Novelty"])
    assert report.values["valid"] == 1.0 and report.values["SNN/Test"] is None
    assert "no-such-set unavailable" in report.reasons["SNN/Test"]
    assert report.reasons["Novelty"] == "no training set given"
    with pytest.raises(MolgenError, match="no-such-set"):
        load_optional_set("no-such-set", required=True)
