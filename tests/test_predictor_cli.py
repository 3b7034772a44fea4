"""`molgen fit-predictor` / `molgen predict` and predictors inside objectives."""

from __future__ import annotations

import csv
import json

from rdkit import Chem, RDConfig
from rdkit.Chem import Crippen

from molgen.cli.main import main
from molgen.domains import SmilesDomain
from molgen.scoring import Objective


def _logp_csv(path, n=160):
    lines = open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi").read().splitlines()
    rows = ["smiles,logp"]
    for line in lines:
        mol = Chem.MolFromSmiles(line.split()[0])
        if mol is not None and 3 <= mol.GetNumHeavyAtoms() <= 20:
            rows.append(f"{line.split()[0]},{Crippen.MolLogP(mol):.3f}")
        if len(rows) > n:
            break
    rows += ["not_a_smiles,1.0", "CCO,"]  # an invalid entry and a missing target
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fit_predict_and_score_with_a_predictor(tmp_path, capsys):
    data = _logp_csv(tmp_path / "logp.csv")
    out = tmp_path / "pred"
    assert main(["fit-predictor", "--data", str(data), "--target", "logp", "--model", "fingerprint-mlp", "--n-models", "2",
                 "--epochs", "15", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 invalid entries, dropped 1 rows without targets" in printed and "test: rmse" in printed
    report = json.loads((out / "predictor.json").read_text())
    assert report["task"] == "regression" and report["split"] == "scaffold" and report["n_test"] > 0
    assert (out / "model.safetensors").is_file()

    inputs = tmp_path / "in.smi"
    inputs.write_text("CCCCCCO\nC1CC\nc1ccccc1Cl\n")
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "p.csv"), "--device", "bogus"]) == 2
    assert "invalid device 'bogus'" in capsys.readouterr().err
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "p.csv"), "--device", "auto"]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert list(rows[0]) == ["input", "logp_mean", "logp_std", "logp_lower", "logp_upper", "in_domain", "similarity", "reason"]
    assert rows[0]["logp_mean"] and rows[1]["logp_mean"] == "" and rows[1]["reason"].startswith("invalid input")
    assert float(rows[0]["logp_lower"]) < float(rows[0]["logp_mean"]) < float(rows[0]["logp_upper"]) and rows[0]["in_domain"] in ("true", "false")
    # Chunks predicted in a process pool: the same table, in the same order.
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "pooled.csv"), "--executor", "process",
                 "--workers", "2", "--chunk-size", "1", "-q"]) == 0
    assert (tmp_path / "pooled.csv").read_text() == (tmp_path / "p.csv").read_text()
    from molgen.workflows.predictors import _LOADED

    assert not _LOADED  # a refit into the same folder must not meet a stale predictor in this process

    objective = tmp_path / "o.toml"
    objective.write_text(f'[[components]]\ntype = "predictor:{out}"\nname = "logp_hat"\nstatistic = "ucb"\n')
    table = Objective.from_toml(objective)([SmilesDomain().parse("CCCCCCO"), None])
    assert table.total[0] == table.total[0] and table.reasons[1] == "invalid object"
    # The learned component on a named device, scored by pool workers that each load the predictor once.
    assert main(["score", str(inputs), "--objective", str(objective), "-o", str(tmp_path / "s.csv"), "--device", "cpu",
                 "--executor", "process", "--workers", "2", "--chunk-size", "2", "-q"]) == 0
    scored = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["smiles"] for r in scored] == ["CCCCCCO", "C1CC", "c1ccccc1Cl"] and scored[0]["logp_hat"] and not scored[1]["score"]


def test_fit_predictor_errors_name_the_problem(tmp_path, capsys):
    data = _logp_csv(tmp_path / "logp.csv", n=20)
    assert main(["fit-predictor", "--data", str(data), "--target", "pIC50", "--out", str(tmp_path / "x")]) == 2
    assert "no column 'pIC50'" in capsys.readouterr().err
    assert main(["fit-predictor", "--data", str(data), "--target", "logp", "--model", "forest", "--out", str(tmp_path / "x")]) == 2
    assert "unknown predictor 'forest'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing"), str(data), "-o", str(tmp_path / "p.csv")]) == 2


def test_fit_predictor_and_predict_on_crystals(tmp_path, capsys):
    # Rock-salt cells with a growing lattice constant; target = cell volume.
    rows = ["text,volume"]
    for i in range(14):
        a = 3.6 + 0.1 * i
        rows.append(f'"{a:.1f} {a:.1f} {a:.1f}\n60 60 60\nNa 0.00 0.00 0.00\nCl 0.50 0.50 0.50",{a**3 * 0.7071:.3f}')
    data = tmp_path / "salts.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cg"
    assert main(["fit-predictor", "--domain", "crystal", "--data", str(data), "--target", "volume", "--n-models", "2",
                 "--epochs", "3", "--out", str(out)]) == 0
    assert "cgcnn (regression)" in capsys.readouterr().out
    inputs = tmp_path / "in.csv"
    inputs.write_text('text\n"4.0 4.0 4.0\n60 60 60\nNa 0.00 0.00 0.00\nCl 0.50 0.50 0.50"\nnot a crystal\n')
    assert main(["predict", str(out), str(inputs), "-o", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert rows[0]["volume_mean"] and rows[1]["volume_mean"] == "" and rows[1]["reason"].startswith("invalid input")
