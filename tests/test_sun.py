"""Convex hull of known phases, the S.U.N. report and the ion-substitution
candidates, on hand-built phases (no potential needed)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from molgen.domains.crystal.substitution import substitution_candidates
from molgen.metrics.sun import relaxation_rmsd, sun_report
from molgen.physics.hull import ConvexHull, KnownPhase


def _phase(formula: str, energy: float, line: int = 0) -> KnownPhase:
    composition = Composition(formula)
    return KnownPhase("test", line, composition.reduced_formula, composition, energy, None)


def _hull() -> ConvexHull:
    # Na and Cl references at 0; NaCl 1 eV/atom below them; Na2Cl above the tie line.
    return ConvexHull([_phase("NaCl", -1.0, 1), _phase("Na2Cl", -0.5, 2), _phase("KCl", float("nan"), 3)],
                      {"Na": 0.0, "Cl": 0.0, "K": 0.0})


def test_hull_distances_follow_the_tie_lines():
    hull = _hull()
    assert hull.e_above_hull("NaCl", -1.0) == pytest.approx(0.0, abs=1e-9)
    assert hull.e_above_hull("NaCl", -0.9) == pytest.approx(0.1)
    assert hull.e_above_hull("NaCl", -1.2) == pytest.approx(-0.2)  # a new ground state sits below the hull
    # Na2Cl: the hull there is 2/3 Na + ... = -2/3 eV/atom, so -0.5 is 1/6 above it.
    assert hull.e_above_hull("Na2Cl", -0.5) == pytest.approx(1 / 6)
    assert hull.e_above_hull("KCl", -0.3) == pytest.approx(-0.3)  # KCl's NaN phase was left out: the tie line K-Cl
    assert hull.e_above_hull("NaF", -1.0) is None  # F has no reference
    assert hull.e_above_hull("NaCl", float("nan")) is None
    distances = dict((p.formula, d) for p, d in hull.known_phase_distances())
    assert distances["NaCl"] == pytest.approx(0.0, abs=1e-9) and distances["Na2Cl"] == pytest.approx(1 / 6)


def _rock_salt(a: float, species=("Na", "Cl")) -> Structure:
    return Structure(Lattice.cubic(a), list(species) * 4,
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0, 0, 0.5], [0.5, 0, 0.5], [0, 0.5, 0], [0, 0.5, 0.5], [0.5, 0, 0]])


def _relaxed(structure: Structure, energy: float, status: str = "ok") -> dict:
    return {"status": status, "energy_per_atom": energy, "final_structure": structure.as_dict()}


def test_sun_report_counts_stable_unique_novel_over_all_samples():
    hull = _hull()
    known = _rock_salt(5.64)
    new_kcl = _rock_salt(6.29, ("K", "Cl"))
    cscl_nacl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # another NaCl polymorph
    generated = [_rock_salt(5.7), new_kcl, _rock_salt(6.25, ("K", "Cl")), cscl_nacl, None, new_kcl]
    relaxations = [_relaxed(known, -1.0), _relaxed(new_kcl, -0.2), _relaxed(new_kcl, -0.2),
                   _relaxed(cscl_nacl, -0.95), None, {"status": "failed", "error": "boom"}]
    report = sun_report(generated, relaxations, hull, [known], threshold=0.1)
    rows = report["rows"]
    assert [r["stable"] for r in rows] == [True, True, True, True, False, False]
    assert [r["unique"] for r in rows] == [True, True, False, True, False, False]  # sample 2 relaxes onto sample 1
    assert [r["novel"] for r in rows] == [False, True, True, True, False, False]  # sample 0 relaxes onto the training NaCl
    assert [r["sun"] for r in rows] == [False, True, False, True, False, False]
    assert report["samples"] == 6 and report["sun"] == 2 and report["sun_rate"] == pytest.approx(2 / 6)
    assert report["relaxation_status"] == {"ok": 4, "failed": 1}
    assert report["rmsd_angstrom"]["n"] == 4
    strict = sun_report(generated, relaxations, hull, [known], threshold=0.0)
    assert strict["stable"] == 3  # the CsCl-type NaCl is 0.05 eV/atom above the hull


def test_sun_estimated_from_a_relaxed_sample():
    from molgen.metrics.sun import wilson_interval

    hull = _hull()
    known = _rock_salt(5.64)
    new_kcl = _rock_salt(6.29, ("K", "Cl"))
    cscl_nacl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    generated = [known.copy(), new_kcl, new_kcl.copy(), cscl_nacl, None, _rock_salt(6.25, ("K", "Cl"))]
    relaxations = [None, _relaxed(new_kcl, -0.2), None, _relaxed(cscl_nacl, -0.5), None, None]
    report = sun_report(generated, relaxations, hull, [known], threshold=0.1, sampled=[1, 3])
    rows = report["rows"]
    # uniqueness and novelty of the generated structures, for the whole set
    assert [r["unique"] for r in rows] == [True, True, False, True, False, False]
    assert [r["novel"] for r in rows] == [False, True, True, True, False, True]
    # stability only in the sample: KCl is stable, CsCl-type NaCl at -0.5 is 0.5 eV/atom above the hull
    assert [r["stable"] for r in rows] == [None, True, None, False, False, None]
    assert report["relaxed"] == 2 and report["sun"] == 1
    assert report["sun_rate"] == pytest.approx(5 / 6 * 1 / 2) and report["stable_rate"] == pytest.approx(5 / 6 * 1 / 2)
    low, high = report["stability_sample"]["sun_rate_ci95"]
    assert low < report["sun_rate"] < high and (low, high) == pytest.approx(tuple(5 / 6 * v for v in wilson_interval(1, 2)))
    assert report["by_number_of_elements"]["2"] == {"samples": 5, "relaxed": 2, "stable": 1, "sun": 1}
    assert [r.get("novel_after_relaxation") for r in rows] == [None, True, None, True, None, None]
    # a new-looking cell that relaxes onto the training NaCl is not S.U.N.
    onto_known = sun_report(generated, [None, _relaxed(known, -1.0), None, None, None, None], hull, [known], sampled=[1])
    assert onto_known["rows"][1]["novel"] and not onto_known["rows"][1]["novel_after_relaxation"]
    assert onto_known["rows"][1]["stable"] and onto_known["sun"] == 0
    assert onto_known["stability_sample"]["novel_after_relaxation_of_relaxed"] == 0
    with pytest.raises(ValueError, match="valid structures"):
        sun_report(generated, relaxations, hull, [known], sampled=[4])
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


def test_relaxation_rmsd_is_in_angstrom():
    a = _rock_salt(5.64)
    b = a.copy()
    b.translate_sites([0], [0.1 / 5.64, 0, 0], frac_coords=True)  # one atom of eight moved by 0.1 A
    rmsd = relaxation_rmsd(a, b)
    assert 0.01 < rmsd < 0.1
    assert relaxation_rmsd(a, a.copy()) == pytest.approx(0.0, abs=1e-6)


def test_substitution_candidates_are_new_compositions_of_known_structures():
    known = [_rock_salt(5.64), _rock_salt(6.29, ("K", "Cl")), _rock_salt(5.0, ("Li", "F"))]
    candidates = substitution_candidates(known, 6, seed=0, elements=["Na", "K", "Li", "Rb", "Cl", "F", "Br", "I"])
    formulas = [c.composition.reduced_formula for c in candidates]
    assert len(candidates) == 6 and len(set(formulas)) == 6
    assert not set(formulas) & {"NaCl", "KCl", "LiF"}
    assert all(len(c) == 8 and Counter(c.composition.element_composition.values()) == Counter({4: 2}) for c in candidates)
    again = [c.composition.reduced_formula for c in substitution_candidates(known, 6, seed=0, elements=["Na", "K", "Li", "Rb", "Cl", "F", "Br", "I"])]
    assert again == formulas
    rb = [c for c in candidates if "Rb" in c.composition.reduced_formula]
    for c in rb:  # a larger ion grows the cell
        assert c.volume > min(k.volume for k in known)
    assert all(math.isfinite(c.volume) for c in candidates) and np.all([c.is_ordered for c in candidates])


def test_cli_sun_reports_rates_and_refuses_without_training(tmp_path, monkeypatch, capsys):
    import csv
    import json

    from molgen.cli.main import main
    from molgen.domains.crystal import to_cif
    from molgen.physics import hull as hull_module
    from molgen.workflows import sun as sun_workflow

    known, new_kcl = _rock_salt(5.64), _rock_salt(6.29, ("K", "Cl"))
    for name, structures in (("train.csv", [known]), ("generated.csv", [known, new_kcl])):
        with open(tmp_path / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["cif"])
            writer.writerows([[to_cif(s)] for s in structures])
    (tmp_path / "broken.csv").write_text("cif\nnot a cif\n")
    monkeypatch.setattr(hull_module.ConvexHull, "from_sources", classmethod(lambda cls, sources, **kw: _hull()))
    monkeypatch.setattr(sun_workflow, "relax_all", lambda structures, jobs=1, progress=None: [
        None if s is None else _relaxed(s, -1.0 if s.composition.reduced_formula == "NaCl" else -0.2) for s in structures])
    monkeypatch.setattr("molgen.physics.relaxation._chgnet_model_module", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "generated.csv", "--sun", "--train", "train.csv", "-q", "-o", "sun.json"]) == 0
    report = json.loads((tmp_path / "sun.json").read_text())
    assert report["samples"] == 2 and report["stable"] == 2 and report["novel"] == 1 and report["sun_rate"] == 0.5
    assert [row["sun"] for row in report["rows"]] == [False, True]
    assert main(["evaluate", "generated.csv", "--sun"]) == 2
    assert "--sun needs --train" in capsys.readouterr().err
    assert main(["evaluate", "generated.csv", "--sun", "--train", "train.csv", "--e-hull-threshold", "-1"]) == 2
    assert main(["evaluate", "generated.csv", "--sun", "--train", "train.csv", "--relax-sample", "1", "--seed", "3",
                 "-q", "-o", "s.json"]) == 0
    sampled = json.loads((tmp_path / "s.json").read_text())
    assert sampled["relaxed"] == 1 and sampled["novel"] == 1 and sampled["stability_sample"]["relaxed_of_valid"] == 1
    assert sum(row["stable"] is None for row in sampled["rows"]) == 1
    assert main(["evaluate", "generated.csv", "--sun", "--train", "train.csv", "--relax-sample", "0"]) == 2
    assert main(["evaluate", "broken.csv", "--sun", "--train", "train.csv", "-q", "-o", "b.json"]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["unparsable"] == 1


def test_a_known_elemental_crystal_is_not_novel_against_a_training_set_without_elements(monkeypatch):
    """mp20-biternary holds no elements: fcc Cu must not count as new, simple-cubic Cu may."""
    from molgen.physics import hull as hull_module
    from molgen.physics.relaxation import known_elemental_crystals
    from molgen.workflows import sun as sun_workflow

    assert [s.composition.reduced_formula for s in known_elemental_crystals(["Cu", "Fe", "O", "Ne"])] == ["Cu", "Fe"]
    fcc = Structure(Lattice.cubic(3.7), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    simple_cubic = Structure(Lattice.cubic(2.4), ["Cu"], [[0, 0, 0]])
    hull = ConvexHull([_phase("NaCl", -1.0, 1)], {"Na": 0.0, "Cl": 0.0, "Cu": 0.0})
    monkeypatch.setattr(hull_module.ConvexHull, "from_sources", classmethod(lambda cls, sources, **kw: hull))
    monkeypatch.setattr(sun_workflow, "relax_all", lambda structures, jobs=1, progress=None: [
        None if s is None else _relaxed(s, 0.0) for s in structures])
    monkeypatch.setattr("molgen.physics.relaxation._chgnet_model_module", lambda: None)
    import molgen.datasets.loading as loading

    monkeypatch.setattr(loading, "load_texts", lambda *a, **kw: type("Loaded", (), {"objects": [_rock_salt(5.64)]})())
    report = sun_workflow.evaluate_sun([fcc, simple_cubic], "train.csv")
    assert [row["novel"] for row in report["rows"]] == [False, True]
    assert report["settings"]["novelty_reference"] == "train.csv + 1 elemental crystals (ASE reference states)"


def test_hull_energy_cache_keeps_failures_and_ignores_foreign_files(tmp_path):
    from molgen.physics.hull import _read_energy_cache, _write_energy_cache

    path = tmp_path / "hull" / "cache.json"
    _write_energy_cache(path, "chgnet-0.3.0", "x.csv", "abc", {"2": -3.5, "3": float("nan")})
    cached = _read_energy_cache(path, "chgnet-0.3.0", "abc")
    assert cached["2"] == -3.5 and math.isnan(cached["3"])  # a failure is remembered, not retried
    assert _read_energy_cache(path, "chgnet-0.3.0", "other-data") == {}
    path.write_text("{not json")
    assert _read_energy_cache(path, "chgnet-0.3.0", "abc") == {}
