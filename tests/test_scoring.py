"""Scoring: transforms, aggregators, components, objective files, named
GuacaMol / PMO objectives checked on known molecules, external commands."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from rdkit import Chem

from molgen.core.errors import ConfigError, RegistryError
from molgen.scoring import OBJECTIVES, Objective, get_objective
from molgen.scoring.aggregators import (
    pareto_ranks,
    weighted_arithmetic_mean,
    weighted_geometric_mean,
)
from molgen.scoring.external import ExternalCommand
from molgen.scoring.molecules import IsomerScore, alert_count, parse_formula
from molgen.scoring.named import (
    ALBUTEROL,
    CELECOXIB,
    HOP_REFERENCE,
    MESTRANOL,
    OSIMERTINIB,
)
from molgen.scoring.transforms import (
    Clipped,
    DoubleSigmoid,
    Gaussian,
    LinearClamp,
    MaxGaussian,
    MinGaussian,
    ReverseSigmoid,
    Sigmoid,
    Step,
    Window,
)


def mols(*smiles):
    return [Chem.MolFromSmiles(s) for s in smiles]


def test_transforms_shapes_and_nan():
    x = np.array([0.0, 2.0, 5.0, 8.0, 10.0, np.nan])
    s = Sigmoid(low=2, high=8, k=0.5)(x)
    assert s[2] == pytest.approx(0.5) and s[0] < 0.01 and s[4] > 0.99 and np.isnan(s[5])
    assert np.allclose(ReverseSigmoid(low=2, high=8)(x[:5]), 1 - s[:5])
    d = DoubleSigmoid(low=2, high=8)(x)
    assert d[2] > 0.99 and d[0] < 0.01 and d[4] < 0.01
    assert Step(low=2, high=8)(x)[:5].tolist() == [0, 1, 1, 1, 0]
    assert Window(low=4, high=6, ramp=2)(np.array([2.0, 3.0, 5.0, 7.0, 9.0])).tolist() == [0, 0.5, 1, 0.5, 0]
    assert LinearClamp(x_at_0=10, x_at_1=0)(np.array([-1.0, 5.0, 11.0])).tolist() == [1, 0.5, 0]
    assert Gaussian(mu=2, sigma=1)(np.array([2.0, 3.0])) == pytest.approx([1, np.exp(-0.5)])
    assert MinGaussian(mu=1, sigma=1)(np.array([0.0, 2.0])) == pytest.approx([1, np.exp(-0.5)])
    assert MaxGaussian(mu=1, sigma=1)(np.array([0.0, 2.0])) == pytest.approx([np.exp(-0.5), 1])
    assert Clipped(upper_x=0.75)(np.array([0.3, 0.9])) == pytest.approx([0.4, 1.0])
    with pytest.raises(ValueError, match="low"):
        Sigmoid(low=5, high=1)


def test_aggregators_and_pareto_ranks():
    v = np.array([[1.0, 0.25], [0.0, 1.0], [np.nan, 1.0]])
    w = np.array([1.0, 1.0])
    assert weighted_arithmetic_mean(v, w)[:2] == pytest.approx([0.625, 0.5])
    g = weighted_geometric_mean(v, w)
    assert g[0] == pytest.approx(0.5) and g[1] == 0.0 and np.isnan(g[2])
    ranks = pareto_ranks(np.array([[1, 1], [2, 0], [0, 0], [0.5, 0.5], [np.nan, 1]]))
    assert ranks.tolist() == [0, 0, 2, 1, -1]


def test_reference_molecules_score_as_published():
    def score(name, smiles):
        return float(get_objective(name)(mols(smiles)).total[0])

    for suite in ("pmo", "guacamol"):
        assert score(f"{suite}/celecoxib_rediscovery", CELECOXIB) == pytest.approx(1.0)
        assert score(f"{suite}/albuterol_similarity", ALBUTEROL) == pytest.approx(1.0)
        assert score(f"{suite}/mestranol_similarity", MESTRANOL) == pytest.approx(1.0)
        # The reference keeps its scaffold but also its sulfone and benzothiazole amine.
        assert score(f"{suite}/deco_hop", HOP_REFERENCE) == pytest.approx(0.5)
        assert score(f"{suite}/scaffold_hop", HOP_REFERENCE) == pytest.approx(2 / 3)
    # Every C11H24 isomer scores exactly 1 (GuacaMol's own test); an extra O costs.
    for isomer in ("CCCCCCCCCCC", "CC(CCC)CCCCCC", "CCCCC(CC(C)CC)C"):
        assert score("guacamol/isomers_c11h24", isomer) == pytest.approx(1.0)
    # C11H24O: element terms 1, 1; one atom too many: exp(-(1/2)^2 / 2); geometric mean of the three.
    assert score("guacamol/isomers_c11h24", "CCCCCCCCCCCO") == pytest.approx(np.exp(-0.125) ** (1 / 3))
    assert 0 < score("pmo/osimertinib_mpo", OSIMERTINIB) < 1
    assert score("pmo/celecoxib_rediscovery", "CCO") < 0.1
    assert score("pmo/qed", "CC(=O)Oc1ccccc1C(=O)O") == pytest.approx(0.5501, abs=1e-3)
    assert len([n for n in OBJECTIVES.names() if n.startswith("guacamol/")]) == 20
    assert len([n for n in OBJECTIVES.names() if n.startswith("pmo/")]) == 20


def test_isomer_formula_and_alerts():
    assert parse_formula("C9H10N2O2PF2Cl") == [("C", 9), ("H", 10), ("N", 2), ("O", 2), ("P", 1), ("F", 2), ("Cl", 1)]
    assert IsomerScore("C2H6O")(Chem.MolFromSmiles("COC")) == pytest.approx(1.0)
    with pytest.raises(Exception, match="formula"):
        parse_formula("not a formula")
    # A catechol-like quinone (PAINS) vs benzene.
    pains = alert_count("PAINS")
    assert pains(Chem.MolFromSmiles("O=C1C=CC(=O)C=C1")) >= 0
    assert pains(Chem.MolFromSmiles("c1ccccc1")) == 0


OBJECTIVE_TOML = """
name = "soft-drug-like"
aggregate = "geometric"
[[components]]
type = "qed"
[[components]]
type = "similarity"
name = "aspirin_like"
references = ["CC(=O)Oc1ccccc1C(=O)O"]
fingerprint = "ECFP4"
weight = 2
transform = { type = "clipped", upper_x = 0.5 }
[[filters]]
type = "molecular_weight"
max = 300
"""


def test_objective_from_toml_filters_and_failures(tmp_path):
    path = tmp_path / "obj.toml"
    path.write_text(OBJECTIVE_TOML)
    objective = get_objective(str(path))
    table = objective(mols("CC(=O)Oc1ccccc1C(=O)O", "CCCCCCCCCCCCCCCCCCCCCCCCCCCC(=O)Oc1ccccc1C(=O)O") + [None])
    qed_aspirin = table.raw["qed"][0]
    assert table.transformed["aspirin_like"][0] == pytest.approx(1.0)
    assert table.total[0] == pytest.approx(qed_aspirin ** (1 / 3))
    assert table.total[1] == 0.0 and table.rejected_by[1] == "molecular_weight"
    assert np.isnan(table.total[2]) and table.reasons[2] == "invalid object"


@pytest.mark.parametrize(
    "body, message",
    [
        ('[[components]]\ntype = "docking_score"\n', "unknown scoring component type 'docking_score'"),
        ('[[components]]\ntype = "smarts"\nsmarts = "C(("\n', "SMARTS 'C((' does not parse"),
        ('[[components]]\ntype = "qed"\nweight = -1\n', "weight must be positive"),
        ('[[components]]\ntype = "similarity"\nreferences = ["CCO"]\nradius = 3\n', "unknown key 'radius'"),
        ('[[components]]\ntype = "qed"\ntransform = { type = "sigmoid", low = 1 }\n', "high"),
        ('name = "x"\n', "components"),
    ],
)
def test_bad_objective_files_name_the_problem(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        get_objective(str(path))


def test_unknown_objective_name_lists_valid_ones():
    with pytest.raises(RegistryError, match="pmo/median1"):
        get_objective("pmo/median3")


def _script(tmp_path, body: str) -> list[str]:
    path = tmp_path / "tool.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_external_command_scores_and_records_failures(tmp_path):
    tool = _script(tmp_path, """
        import json, sys
        for line in sys.stdin:
            r = json.loads(line)
            if r["text"] == "CCO":
                print(json.dumps({"id": r["id"], "error": "cannot dock ethanol"}))
            else:
                print(json.dumps({"id": r["id"], "score": len(r["text"])}))
    """)
    values, reasons = ExternalCommand(tool, name="lab")(mols("c1ccccc1", "CCO") + [None])
    assert values[0] == 8 and np.isnan(values[1]) and np.isnan(values[2])
    assert reasons == [None, "lab: cannot dock ethanol", "invalid object"]

    crash = _script(tmp_path, "import sys\nsys.stderr.write('segfault in tool\\n')\nsys.exit(3)\n")
    values, reasons = ExternalCommand(crash, name="lab")(mols("CCO"))
    assert np.isnan(values[0]) and reasons[0] == "lab: exited with code 3 (segfault in tool)"

    slow = _script(tmp_path, "import time\ntime.sleep(5)\n")
    values, reasons = ExternalCommand(slow, name="lab", timeout=0.5)(mols("CCO"))
    assert reasons[0] == "lab: timed out after 0.5 s"

    values, reasons = ExternalCommand(["/nonexistent/tool"], name="lab")(mols("CCO"))
    assert reasons[0].startswith("lab: could not start '/nonexistent/tool'")


def test_external_component_in_an_objective(tmp_path):
    tool = _script(tmp_path, """
        import json, sys
        for line in sys.stdin:
            r = json.loads(line)
            print(json.dumps({"id": r["id"], "score": 0.25}))
    """)
    objective = Objective.from_spec({"components": [{"type": "external", "command": tool, "name": "assay"}]})
    assert objective(mols("CCO")).total[0] == pytest.approx(0.25)


def test_guacamol_task_score_averages_top_x_means():
    from molgen.scoring.named import guacamol_task_score

    # Rediscovery uses the single best; similarity tasks average top-1, top-10 and top-100 means.
    assert guacamol_task_score("celecoxib_rediscovery", [0.2, float("nan"), 0.9]) == pytest.approx(0.9)
    scores = [1.0] * 10 + [0.5] * 90
    assert guacamol_task_score("median1", scores) == pytest.approx((1.0 + 1.0 + (10 + 45) / 100) / 3)
    # Fewer molecules than x: the missing ones count as 0.
    assert guacamol_task_score("isomers_c11h24", [1.0] * 53) == pytest.approx(53 / 159)


def test_pmo_top10_auc_follows_the_published_accounting():
    from molgen.domains import SmilesDomain
    from molgen.scoring import Oracle

    oracle = Oracle(get_objective("qed"), SmilesDomain(), budget=300)
    oracle.history = [(f"m{i}", 0.5) for i in range(100)] + [(f"n{i}", 1.0) for i in range(100)]
    # Trapezoids 0 -> 0.5 over calls 0-100 and 0.5 -> 1 over 100-200, then flat at 1 to the budget.
    assert oracle.top_auc(10) == pytest.approx((25 + 75 + 100) / 300)
    assert oracle.top_auc(10, finish=False) == pytest.approx(100 / 300)
    assert oracle.summary()["top10"] == 1.0


def test_cli_scores_a_file_keeping_invalid_lines(tmp_path, capsys):
    import csv

    from molgen.cli.main import main

    data = tmp_path / "mols.smi"
    data.write_text(f"{CELECOXIB}\nnot_a_smiles\nCCO\n")
    out = tmp_path / "scores.csv"
    assert main(["score", str(data), "--objective", "pmo/celecoxib_rediscovery", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["valid"] for r in rows] == ["1", "0", "1"]
    assert float(rows[0]["score"]) == pytest.approx(1.0) and rows[1]["score"] == ""
    assert rows[1]["reason"] == "invalid object"
    assert "scored 2 of 3" in capsys.readouterr().out
    assert main(["score", str(data), "--objective", "pmo/nope", "-o", str(out)]) == 2
