"""Protein/peptide domain, FASTA, properties against published values,
classifier, metrics and the CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import needs_mirror

from molgen.core.errors import DataError, ParseError
from molgen.datasets import load_texts
from molgen.datasets.fasta import read_fasta, write_fasta
from molgen.domains.protein import ProteinDomain
from molgen.metrics.peptides import diversity, evaluate_peptides
from molgen.properties import peptides as pp
from molgen.predictors.peptides import AMPClassifier, CompositionBaseline
from molgen.predictors.metrics import roc_auc

MAGAININ_2 = "GIGKFLHSAKKFGKAFVGEIMNS"
MELITTIN = "GIGAVLKVLTTGLPALISWIKRKRQQ"
LL_37 = "LLGDFFRKSKEKIGKEFKRIVQRIKDFLRNLVPRTES"


def test_residue_policy():
    domain = ProteinDomain()
    assert domain.parse("gigk flhs") == "GIGKFLHS"  # lowercase upper-cased, spaces dropped
    with pytest.raises(ParseError, match="'U' at position 3.*nonstandard='map'"):
        domain.parse("ACUK")
    assert ProteinDomain(nonstandard="map").parse("ACUKOBZ") == "ACCKKNQ"
    with pytest.raises(ParseError, match="'X' at position 2"):
        ProteinDomain(nonstandard="map").parse("AXK")
    with pytest.raises(ParseError, match="lowercase"):
        ProteinDomain(lowercase="reject").parse("ACk")
    with pytest.raises(ParseError, match="empty"):
        domain.parse("")
    bounded = ProteinDomain(min_length=5, max_length=50)
    assert not bounded.is_valid("ACK") and bounded.is_valid("ACKLLW")
    assert not bounded.is_valid("A" * 10_000)
    assert domain.is_valid(domain.parse("A" * 10_000))  # no bound by default: judged, not crashed
    assert domain.tokenizer.tokenize("GIG") == ["G", "I", "G"] and len(domain.tokenizer.vocab) == 20 + 5


def test_fasta_round_trip_and_bad_records(tmp_path):
    path = tmp_path / "p.fasta"
    write_fasta(path, [("mag2 magainin", MAGAININ_2), ("ll37", LL_37)], width=10)
    assert read_fasta(path) == [("mag2 magainin", MAGAININ_2), ("ll37", LL_37)]
    assert max(len(line) for line in path.read_text().splitlines() if not line.startswith(">")) == 10  # wrapped
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nGIGK\n>empty\n>lower\ngigkfl\n>odd\nGIGXK\n")
    domain = ProteinDomain()
    with pytest.raises(DataError, match=r"bad.fasta:3: empty sequence"):
        load_texts(str(bad), domain)
    loaded = load_texts(str(bad), domain, on_invalid="skip")
    assert loaded.texts == ["GIGK", "GIGKFL"]
    assert [line for line, _ in loaded.skipped] == [3, 6]
    headerless = tmp_path / "x.fasta"
    headerless.write_text("GIGK\n")
    with pytest.raises(DataError, match="before the first '>'"):
        load_texts(str(headerless), domain)


def test_properties_match_published_values():
    # Average masses (free acids) and indices as listed by ExPASy ProtParam / the APD.
    assert pp.molecular_weight(MAGAININ_2) == pytest.approx(2466.9, abs=0.5)
    assert pp.molecular_weight(MELITTIN) == pytest.approx(2847.5, abs=0.5)
    assert pp.molecular_weight(LL_37) == pytest.approx(4493.3, abs=0.5)
    assert pp.gravy(LL_37) == pytest.approx(-0.724, abs=1e-3)
    assert pp.boman_index(LL_37) == pytest.approx(2.99, abs=0.02)
    assert pp.isoelectric_point(LL_37) == pytest.approx(10.61, abs=0.1)
    # side-chain count: magainin 2 has K x4 + (H) - E -> about +3 at pH 7, LL-37 +6, melittin +5 (+ free N-terminus)
    assert pp.net_charge(MAGAININ_2) == pytest.approx(3, abs=0.3)
    assert pp.net_charge(LL_37) == pytest.approx(6, abs=0.3)
    assert pp.net_charge(MELITTIN) == pytest.approx(5, abs=0.3)
    assert pp.aromaticity("FWYA") == pytest.approx(0.75)
    assert pp.cationic_fraction("KRAA") == 0.5
    # an ideal amphipathic helix has a larger moment than its scrambled, same-composition version
    helix = "KLLKLLKKLLKLLK"
    assert pp.hydrophobic_moment(helix) > pp.hydrophobic_moment("KKKKKKLLLLLLLL")
    assert pp.hydrophobic_moment("LLLLLLLLLLL") == pytest.approx(abs(sum(1.06 * np.exp(1j * np.deg2rad(100) * k) for k in range(11))) / 11)


def test_classifier_learns_and_saves_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    positives = ["".join(rng.choice(list("KKRLLWFA"), size=rng.integers(12, 30))) for _ in range(60)]
    negatives = ["".join(rng.choice(list("DESTNQGPEA"), size=rng.integers(12, 30))) for _ in range(60)]
    seqs, labels = positives + negatives, [1] * 60 + [0] * 60
    model = AMPClassifier(epochs=8, seed=0).fit(seqs, labels)
    assert roc_auc(labels, model.predict_proba(seqs)) > 0.95
    path = model.save(tmp_path / "clf")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = AMPClassifier.load(path)
    assert np.allclose(loaded.predict_proba(seqs[:5]), model.predict_proba(seqs[:5]), atol=1e-6)
    assert roc_auc(labels, CompositionBaseline().fit(seqs, labels).predict_proba(seqs)) > 0.95


def test_shipped_classifier_loads_and_separates_known_peptides():
    model = AMPClassifier.load()
    assert model.metrics["test"]["roc_auc"] >= 0.9
    proba = model.predict_proba([LL_37, MAGAININ_2, "MSTDEQPNGSSETDAPQ"])
    assert proba[0] > 0.5 and proba[1] > 0.5 and proba[2] < 0.5


def test_peptide_metrics_by_hand():
    assert diversity(["AAAA", "AAAA"]) == 0.0
    assert diversity(["AAAA", "CCCC"]) == 1.0
    report = evaluate_peptides(["GIGK", "GIGK", "KLLK", "", "AXK"], ["GIGK", "KLLKK"], ["GIGK"], classifier=False)
    v = report.values
    assert v["valid"] == pytest.approx(3 / 5)
    assert v["unique"] == pytest.approx(2 / 3)
    assert v["novelty"] == pytest.approx(1 / 2)
    assert v["W1/length"] == pytest.approx(0.5 * abs(4 - 4) + 0.5 * abs(4 - 5), abs=0.2)
    assert v["amp_fraction"] is None and report.reasons["amp_fraction"] == "no classifier"
    empty = evaluate_peptides(["", "X"], None, None, classifier=False)
    assert empty.values["valid"] == 0.0 and empty.values["unique"] is None


@needs_mirror
def test_amp_splits_are_stratified_and_nested():
    domain = ProteinDomain()
    train = load_texts("amp-train", domain)
    assert len(train.texts) == 3120 and sum(train.targets["label"]) == 1560
    positives = load_texts("amp-positive-train", domain).texts
    assert len(positives) == 1560
    assert set(positives) <= set(train.texts)
    assert not set(positives) & set(load_texts("amp-test", domain).texts) - set(train.texts)


def test_cli_trains_samples_fasta_and_evaluates(tmp_path, capsys):
    from molgen.cli.main import main

    data = tmp_path / "amps.fasta"
    write_fasta(data, [(f"p{i}", s) for i, s in enumerate([MAGAININ_2, MELITTIN, LL_37] * 4)])
    run = tmp_path / "run"
    assert main(["train", "--domain", "protein", "--data", str(data), "--max-steps", "3", "--no-progress", "--out", str(run)]) == 0
    out = tmp_path / "samples.fasta"
    assert main(["sample", str(run), "-n", "8", "-o", str(out)]) == 0
    records = read_fasta(out)
    assert len(records) == 8 and all(h.startswith("sample_") for h, _ in records)
    report = tmp_path / "r.json"
    assert main(["evaluate", str(out), "--ref", str(data), "--train", str(data), "-o", str(report)]) == 0
    metrics = json.loads(report.read_text())["metrics"]
    assert "amp_fraction" in metrics and "diversity" in metrics
    assert "generated sequences" in capsys.readouterr().out
