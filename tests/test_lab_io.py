"""Lab-friendly I/O: SD files in and out, identifiers carried through, unknown
suffixes refused, discovery's optional requirements checked up front, and
strict JSON (no bare NaN)."""

from __future__ import annotations

import csv
import gzip
import json
import math
import sys

import numpy as np
import pytest
from conftest import SMALL_SMILES
from rdkit import Chem
from rdkit.Chem import AllChem

from molgen.cli.main import main
from molgen.core.errors import DataError, MolgenError
from molgen.core.serialization import dumps_json, write_json
from molgen.datasets import load_texts
from molgen.datasets.readers import read_labeled
from molgen.domains import SmilesDomain

EXIT_USER_ERROR = 2

# A record RDKit can parse but not sanitize (a five-valent carbon).
BAD_VALENCE = """bad_valence
     RDKit          2D

  6  5  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0
    1.0000    0.0000    0.0000 C   0  0
   -1.0000    0.0000    0.0000 C   0  0
    0.0000    1.0000    0.0000 C   0  0
    0.0000   -1.0000    0.0000 C   0  0
    0.5000    0.5000    0.0000 C   0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
  1  6  1  0
M  END
>  <Catalog_ID>
Z-BAD

$$$$
"""
# A record whose molblock RDKit cannot read at all (a broken counts line).
GARBAGE = """garbage
     hand-written

 xx yy  0  0  0  0  0  0  0  0999 V2000
M  END
$$$$
"""


def _block(smiles: str, title: str, **props: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    AllChem.Compute2DCoords(mol)
    mol.SetProp("_Name", title)
    return Chem.MolToMolBlock(mol) + "".join(f">  <{k}>\n{v}\n\n" for k, v in props.items()) + "$$$$\n"


@pytest.fixture
def sdf_file(tmp_path):
    """Five good molecules, one record that fails sanitization (record 3)
    and one RDKit cannot read (record 5)."""
    blocks = [_block(s, f"CPD-{i}", Catalog_ID=f"Z{i:03d}", logp=f"{i * 0.5:.1f}") for i, s in enumerate(SMALL_SMILES[:5])]
    blocks.insert(2, BAD_VALENCE)
    blocks.insert(4, GARBAGE)
    path = tmp_path / "library.sdf"
    path.write_text("".join(blocks))
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("molgen: error: "), err
    return lines[0]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- SDF input -----------------------------------------------------------------
def test_score_reads_sdf_records_keeps_names_and_invalid_records(sdf_file, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code, printed, err = _run(capsys, "score", sdf_file, "--objective", "qed", "-o", out)
    assert code == 0, err
    assert "scored 5 of 7 molecules" in printed
    rows = _rows(out)
    assert list(rows[0])[:3] == ["id", "smiles", "valid"]
    assert [r["id"] for r in rows] == ["CPD-0", "CPD-1", "bad_valence", "CPD-2", "", "CPD-3", "CPD-4"]
    assert [r["valid"] for r in rows] == ["1", "1", "0", "1", "0", "1", "1"]
    assert rows[0]["smiles"] == "CCO" and rows[0]["score"]
    assert "valence" in rows[2]["reason"].lower() and rows[2]["score"] == ""
    assert rows[4]["reason"].startswith("unreadable SD record") and rows[4]["smiles"] == ""


def test_score_reads_gzipped_sdf_and_picks_an_id_property(sdf_file, tmp_path, capsys):
    gz = tmp_path / "library.sdf.gz"
    gz.write_bytes(gzip.compress(sdf_file.read_bytes()))
    out = tmp_path / "scores.csv"
    code, printed, err = _run(capsys, "score", gz, "--objective", "qed", "--id-column", "catalog_id", "-o", out)
    assert code == 0, err
    assert "scored 5 of 7" in printed
    rows = _rows(out)
    assert list(rows[0])[0] == "Catalog_ID"
    assert [r["Catalog_ID"] for r in rows] == ["Z000", "Z001", "Z-BAD", "Z002", "", "Z003", "Z004"]


def test_sdf_without_titles_falls_back_to_an_id_like_property(tmp_path):
    path = tmp_path / "untitled.sdf"
    path.write_text(_block("CCO", "", ID="E-1") + _block("c1ccccc1", "", ID="E-2"))
    labeled = read_labeled(path)
    assert labeled.id_name == "ID" and labeled.ids == ["E-1", "E-2"]


def test_load_texts_reads_sdf_names_the_record_and_takes_properties_as_targets(sdf_file):
    domain = SmilesDomain()
    with pytest.raises(DataError, match=r"library.sdf record 3: .*--skip-invalid"):
        load_texts(str(sdf_file), domain)
    loaded = load_texts(str(sdf_file), domain, on_invalid="skip", targets=("LogP",))
    assert loaded.texts == [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SMALL_SMILES[:5]]
    assert [line for line, _ in loaded.skipped] == [3, 5]
    assert loaded.targets["LogP"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    with pytest.raises(DataError, match="no SD property 'pIC50'; properties are Catalog_ID, logp"):
        load_texts(str(sdf_file), domain, on_invalid="skip", targets=("pIC50",))


def test_sdf_keeps_stereochemistry(tmp_path):
    path = tmp_path / "stereo.sdf"
    smiles = ["C[C@@H](N)C(=O)O", "F/C=C/Cl"]
    path.write_text("".join(_block(s, f"s{i}") for i, s in enumerate(smiles)))
    assert load_texts(str(path), SmilesDomain()).texts == smiles


def test_evaluate_reads_sdf_and_counts_unreadable_records_as_invalid(sdf_file, tmp_path):
    from molgen.workflows.evaluation import evaluate_file

    report = evaluate_file(sdf_file, reference=None, training=None, metrics=["valid"], use_cache=False,
                           output=tmp_path / "report.json")
    assert report.metadata["n"] == 7 and report.metadata["n_valid"] == 5
    json.loads((tmp_path / "report.json").read_text(), parse_constant=_reject_constant)


def test_predict_reads_sdf_and_carries_ids(sdf_file, tmp_path, capsys):
    from molgen.workflows.predictors import fit_predictor

    data = tmp_path / "train.csv"
    data.write_text("smiles,y\n" + "".join(f"{s},{len(s)}\n" for s in SMALL_SMILES))
    model = tmp_path / "pred"
    fit_predictor(str(data), ["y"], model, model="fingerprint-mlp", split="random", hparams={"n_models": 1, "epochs": 2})

    out = tmp_path / "p.csv"
    code, printed, err = _run(capsys, "predict", model, sdf_file, "-o", out)
    assert code == 0, err
    assert "predicted 5 of 7 entries" in printed
    rows = _rows(out)
    assert list(rows[0]) == ["id", "input", "y_mean", "y_std", "reason"]
    assert rows[0]["id"] == "CPD-0" and rows[0]["y_mean"]
    assert rows[2]["id"] == "bad_valence" and rows[2]["y_mean"] == "" and rows[2]["reason"].startswith("invalid input")

    smi = tmp_path / "named.smi"
    smi.write_text("CCO ethanol\nc1ccccc1\tbenzene ring\nC1CC broken\n")
    code, _, err = _run(capsys, "predict", model, smi, "--id-column", "name", "-o", out)
    assert code == 0, err
    assert [(r["name"], r["input"]) for r in _rows(out)] == [("ethanol", "CCO"), ("benzene ring", "c1ccccc1"), ("broken", "C1CC")]


# -- identifiers ---------------------------------------------------------------------
def test_csv_id_column_is_detected_named_and_missing_names_are_errors(tmp_path, capsys):
    data = tmp_path / "assay.csv"
    data.write_text("Compound_ID,SMILES,pIC50\nA-1,CCO,5\nA-1,c1ccccc1,6\n,CCN,7\n")  # a duplicate and an empty id
    out = tmp_path / "scores.csv"
    code, _, err = _run(capsys, "score", data, "--objective", "qed", "-o", out)
    assert code == 0, err
    rows = _rows(out)
    assert list(rows[0])[:2] == ["Compound_ID", "smiles"]
    assert [r["Compound_ID"] for r in rows] == ["A-1", "A-1", ""]
    assert [r["smiles"] for r in rows] == ["CCO", "c1ccccc1", "CCN"]

    code, _, err = _run(capsys, "score", data, "--objective", "qed", "--id-column", "pic50", "-o", out)
    assert code == 0, err
    assert list(_rows(out)[0])[0] == "pIC50"

    code, _, err = _run(capsys, "score", data, "--objective", "qed", "--id-column", "batch", "-o", out)
    assert code == EXIT_USER_ERROR
    assert "Compound_ID, SMILES, pIC50" in _one_error_line(err)


def test_smi_name_field_is_the_default_id_and_plain_files_get_none(tmp_path, capsys):
    named = tmp_path / "named.smi"
    named.write_text("CCO ethanol\nc1ccccc1\n")
    labeled = read_labeled(named)
    assert labeled.id_name == "id" and labeled.ids == ["ethanol", ""]
    plain = tmp_path / "plain.smi"
    plain.write_text("CCO\nc1ccccc1\n")
    assert read_labeled(plain).ids is None
    out = tmp_path / "scores.csv"
    assert main(["score", str(plain), "--objective", "qed", "-o", str(out)]) == 0
    assert list(_rows(out)[0])[0] == "smiles"  # no identifier, no id column
    code, _, err = _run(capsys, "score", plain, "--objective", "qed", "--id-column", "compound", "-o", out)
    assert code == EXIT_USER_ERROR and "smiles, name" in _one_error_line(err)


# -- SDF output ------------------------------------------------------------------------
def test_sample_writes_sdf_that_rdkit_reads_back(tmp_path, capsys):
    out = tmp_path / "samples.sdf"
    code, printed, err = _run(capsys, "sample", "zinc250k", "-n", 24, "--seed", 0, "--device", "cpu", "-o", out)
    assert code == 0, err
    validity = float(printed.split("validity ")[1].split(",")[0])
    mols = list(Chem.SDMolSupplier(str(out)))
    assert all(m is not None for m in mols)
    assert len(mols) == round(validity * 24)  # invalid samples are left out
    names = [m.GetProp("_Name") for m in mols]
    assert all(n.startswith("sample_") for n in names) and len(set(names)) == len(names)
    assert all(m.GetIntProp("valid") == 1 for m in mols)
    assert all(m.GetConformer().Is3D() is False for m in mols)
    assert [Chem.MolToSmiles(m) for m in mols] == [m.GetProp("smiles") for m in mols]


def test_sdf_output_is_refused_for_non_molecule_models():
    from molgen.domains.crystal import CrystalDomain
    from molgen.workflows.sampling import sample_to_file

    class Stub:
        domain = CrystalDomain()

        def sample_texts(self, n, **kwargs):  # pragma: no cover - refused before sampling
            raise AssertionError("sampled")

    with pytest.raises(MolgenError, match="SDF output is for molecule models"):
        sample_to_file(Stub(), 2, "x.sdf")


# -- unknown suffixes ----------------------------------------------------------------------
def test_unknown_suffixes_are_refused_with_the_known_ones(tmp_path, capsys):
    book = tmp_path / "molecules.xlsx"
    book.write_bytes(b"PK\x03\x04 not a text file")
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\n")

    code, _, err = _run(capsys, "score", book, "--objective", "qed", "-o", tmp_path / "s.csv")
    line = _one_error_line(err)
    assert code == EXIT_USER_ERROR and "'.xlsx'" in line and ".smi" in line and ".sdf" in line and ".csv" in line

    code, _, err = _run(capsys, "score", smi, "--objective", "qed", "-o", tmp_path / "out.parquet")
    line = _one_error_line(err)
    assert code == EXIT_USER_ERROR and "'.parquet'" in line and "known: .csv" in line
    assert not (tmp_path / "out.parquet").exists()

    code, _, err = _run(capsys, "evaluate", smi, "--no-ref", "--no-train", "-o", tmp_path / "report.txt")
    assert code == EXIT_USER_ERROR and "known: .json" in _one_error_line(err)

    code, _, err = _run(capsys, "train", "--data", book, "--out", tmp_path / "run", "--max-steps", 1)
    assert code == EXIT_USER_ERROR and "'.xlsx'" in _one_error_line(err)

    code, _, err = _run(capsys, "sample", "zinc250k", "-n", 2, "--device", "cpu", "-o", tmp_path / "s.parquet")
    line = _one_error_line(err)
    assert code == EXIT_USER_ERROR and "'.parquet'" in line and ".sdf" in line


def test_predict_refuses_an_unknown_output_suffix_before_loading_anything(tmp_path, capsys):
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\n")
    code, _, err = _run(capsys, "predict", tmp_path / "no-such-predictor", smi, "-o", tmp_path / "p.xlsx")
    assert code == EXIT_USER_ERROR and "'.xlsx'" in _one_error_line(err)


# -- discover's optional requirements ---------------------------------------------------------
def test_discover_without_chgnet_fails_before_starting(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "chgnet", None)  # `import chgnet` now raises ImportError
    out = tmp_path / "run"
    code, printed, err = _run(capsys, "discover", "--rounds", 1, "--per-round", 4, "--relax-per-round", 2, "--out", out)
    line = _one_error_line(err)
    assert code == EXIT_USER_ERROR
    assert "pip install 'molgen[potential]'" in line and "--relax-per-round 0" in line
    assert not out.exists() and printed == ""  # nothing sampled, scored or written


def test_the_chgnet_check_only_applies_when_relaxations_are_asked_for(monkeypatch):
    from molgen.workflows.discovery import DiscoveryConfig, require_relaxation_support

    monkeypatch.setitem(sys.modules, "chgnet", None)
    require_relaxation_support(DiscoveryConfig(relax={"per_round": 0}))
    require_relaxation_support(DiscoveryConfig(relax={"budget": 0}))
    with pytest.raises(MolgenError, match="molgen\\[potential\\]"):
        require_relaxation_support(DiscoveryConfig())


# -- strict JSON -----------------------------------------------------------------------------------
def _reject_constant(name):
    raise AssertionError(f"bare {name} in JSON output")


def test_json_outputs_write_non_finite_numbers_as_null(tmp_path):
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": np.float32("nan"), "e": np.float64(2.0)},
            "f": (np.int64(3), True, None), "g": np.array([1.0, np.nan])}
    text = dumps_json(data, sort_keys=True)
    assert json.loads(text, parse_constant=_reject_constant) == {
        "a": None, "b": [None, None, 1.5], "c": {"d": None, "e": 2.0}, "f": [3, True, None], "g": [1.0, None]}
    write_json(tmp_path / "r.json", {"score": math.nan, "ok": 1})
    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=_reject_constant) == {"score": None, "ok": 1}
    with pytest.raises(TypeError):
        dumps_json({"path": object()})
