"""The materials discovery loop: funnel, store, relaxation stage, resume,
ASE database and the ``discover`` command, on the shipped Perov-5 generator
with a stand-in relaxation (the real CHGNet oracle is tested in
test_potential.py)."""

from __future__ import annotations

import csv
import json
import sqlite3

import numpy as np
import pytest

from molgen.cli.main import EXIT_USER_ERROR
from molgen.core.errors import ConfigError, MolgenError
from molgen.loops.discovery import MaterialsDiscovery
from molgen.core.executors import SerialExecutor
from molgen.scoring.objective import Objective
from molgen.workflows.discovery import DiscoveryConfig
from molgen.workflows.structure_prediction import predict_structures
from tests.conftest import SMALL_CRYSTALS, needs_mirror

CALLS: list[str] = []


def fake_relax(payload: dict) -> dict:
    """Stand-in potential: every third structure diverges; energy from the cell volume."""
    from pymatgen.core import Structure

    structure = Structure.from_dict(payload["structure"])
    CALLS.append(structure.composition.reduced_formula)
    if len(CALLS) % 3 == 0:
        return {"status": "diverged", "error": "volume ratio 5.0 outside [1/3, 3]", "seconds": 0.0}
    energy = -structure.volume / len(structure) / 4.0
    return {"status": "ok", "error": None, "energy_per_atom": energy, "formation_energy_per_atom": energy / 4.0 + 0.5,
            "final_structure": structure.as_dict(), "seconds": 0.0}


class Interrupt(BaseException):
    """A kill in the middle of a round (not an Exception: executors must not swallow it)."""


def interrupting_relax(payload: dict) -> dict:
    if len(CALLS) == 4:
        raise Interrupt()
    return fake_relax(payload)


def objective_spec(reference_csv) -> dict:
    return {
        "name": "pv-test",
        "aggregate": "geometric",
        "components": [
            {"type": "band_gap", "name": "p_nonmetal", "path": "perov5-gap", "output": "p_nonmetal"},
            {"type": "band_gap", "name": "gap_if_nonmetal", "path": "perov5-gap", "output": "conditional",
             "transform": {"type": "window", "low": 1.1, "high": 1.8, "ramp": 0.5}},
            {"type": "predictor", "name": "formation_energy", "path": "perov5-heat", "per_atom": True, "weight": 0.5,
             "transform": {"type": "reverse_sigmoid", "low": 0.0, "high": 0.4}},
        ],
        "filters": [
            {"type": "structure_valid", "min": 1},
            {"type": "composition_valid", "min": 1},
            {"type": "excluded_elements", "max": 0},
            {"type": "novelty", "source": [str(reference_csv)], "min": 1},
        ],
    }


@pytest.fixture
def reference_csv(tmp_path):
    path = tmp_path / "known.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cif"])
        for text in SMALL_CRYSTALS[:3]:
            writer.writerow([text])
    return path


def make_loop(out_dir, reference_csv, rounds=2, relax_fn=fake_relax, seed=0, relax=None, hull=None, polymorphs=None):
    from molgen.backbones.base import load_generator
    from molgen.loops.reinforce import PriorRegularizedRL
    from molgen.pretrained import pretrained_dir

    config = DiscoveryConfig.model_validate({
        "rounds": rounds, "per_round": 48,
        "strategy": {"update_batch": 24},
        "relax": {"per_round": 3, "budget": 5, "max_formation_energy": 0.0, "executor": "serial", **(relax or {})},
        "polymorphs": polymorphs or {},
    })
    strategy = PriorRegularizedRL(load_generator(pretrained_dir("perov5")), config.strategy, seed=seed)
    objective = Objective.from_spec(objective_spec(reference_csv))
    return MaterialsDiscovery(strategy, objective, out_dir, config, relax_fn=relax_fn, executor=SerialExecutor(), hull=hull,
                              structure_predictor=predict_structures)


def csv_rows(path) -> list[dict]:
    """The rows of a CSV file the run wrote."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def store_rows(out_dir):
    with sqlite3.connect(out_dir / "candidates.sqlite") as db:
        candidates = db.execute("SELECT key, text, step, total, rejected_by FROM candidates ORDER BY call").fetchall()
        followups = db.execute("SELECT key, step, status, error FROM followups ORDER BY key").fetchall()
    return candidates, followups


def test_rounds_store_funnel_relaxations_and_exports(tmp_path, reference_csv):
    CALLS.clear()
    result = make_loop(tmp_path / "run", reference_csv).run()
    out = result.out_dir
    rounds = csv_rows(out / "rounds.csv")
    assert [int(r["round"]) for r in rounds] == [1, 2]
    candidates, followups = store_rows(out)
    assert len(candidates) == sum(int(r["new"]) for r in rounds) > 0
    assert len({c[0] for c in candidates}) == len(candidates)  # StructureMatcher keys are unique
    for r in rounds:
        n = {k: int(float(v)) if k != "in_window_fraction" else float(v) for k, v in r.items() if k.startswith(("pass", "new", "valid", "relax", "in_window", "decoded", "sampled"))}
        assert n["sampled"] >= n["decoded"] >= n["new"] >= n["pass_structure_valid"] >= n["pass_all"]
        assert n["valid_novel"] <= n["valid"] <= n["new"] and 0.0 <= n["in_window_fraction"] <= 1.0
        assert n["relaxed"] <= 3
    # Relaxation: the budget (5) caps round 2; only candidates that passed every filter were relaxed.
    assert len(followups) == len(CALLS) == 5
    passed = {c[0] for c in candidates if c[4] is None and c[3] is not None}
    assert {f[0] for f in followups} <= passed
    statuses = sorted(f[2] for f in followups)
    assert statuses.count("diverged") == 1 and statuses.count("ok") == 4
    assert next(f[3] for f in followups if f[2] == "diverged").startswith("volume ratio")
    # Relaxed structures as CIF and in the ASE database, queryable with ASE.
    import ase.db

    db = ase.db.connect(str(out / "relaxed.db"))
    assert db.count() == 4 == len(list((out / "relaxed").glob("*.cif")))
    row = next(db.select())
    assert row.candidate_key in passed and np.isfinite(row.energy_per_atom)
    assert result.summary["relaxations"] == 5 and result.summary["relaxation_status"] == {"diverged": 1, "ok": 4}
    selected = csv_rows(out / "selected.csv")
    assert len(selected) == 5 and {"predicted_gap", "gap_if_nonmetal", "p_nonmetal", "formation_energy", "energy_per_atom"} <= set(selected[0])


def test_relaxed_candidates_are_gated_by_their_distance_to_the_hull(tmp_path, reference_csv):
    from pymatgen.core import Element

    from molgen.physics.hull import ConvexHull

    # No known phases and zero references: the hull is at 0 eV/atom, so a candidate's distance
    # to it is its (stand-in) energy, -volume/atom/4; the gate at -4 splits the relaxed ones.
    hull = ConvexHull([], {el.symbol: 0.0 for el in Element})
    CALLS.clear()
    result = make_loop(tmp_path / "run", reference_csv, relax={"hull": ["hand-built"], "max_e_above_hull": -4.0,
                                                               "max_formation_energy": None}, hull=hull).run()
    with sqlite3.connect(result.out_dir / "candidates.sqlite") as db:
        rows = [(status, json.loads(raw)) for status, raw in db.execute("SELECT status, result FROM followups")]
    usable = [r for status, r in rows if status == "ok"]
    assert len(usable) == 4
    for r in usable:
        assert r["e_above_hull"] == pytest.approx(r["energy_per_atom"], abs=1e-6)
    stable = sum(r["e_above_hull"] <= -4.0 for r in usable)
    assert 0 < stable < 4  # the gate decides, not the (here disabled) formation-energy proxy
    assert result.summary["stable"] == stable and "hull of hand-built" in result.summary["stability"]
    with (result.out_dir / "rounds.csv").open() as handle:
        assert all("e_above_hull_median" in row for row in csv.DictReader(handle))
    selected = csv_rows(result.out_dir / "selected.csv")
    assert sum(row["stable"] == "True" for row in selected) == stable and all("e_above_hull" in row for row in selected)


def test_element_count_filter_keeps_binary_and_ternary_chemistry():
    from pymatgen.core import Lattice, Structure

    from molgen.scoring.crystals import ElementCountParams, element_count

    count = element_count(ElementCountParams())
    cell = Lattice.cubic(4.0)
    assert count(Structure(cell, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])) == 2.0
    assert count(Structure(cell, ["Ba", "Ti", "O", "N"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0, 0.5, 0.5]])) == 4.0


def test_the_mp20_presets_use_the_mp20_generator_gap_model_and_hull():
    from molgen.workflows.discovery import load_preset

    for name in ("photovoltaic-mp20", "photovoltaic-mp20-known-gap"):
        preset = load_preset(name)
        assert preset.generator == "mp20" and preset.discovery.relax.hull == ["mp20-biternary"]
        assert {"type": "element_count", "max": 3} in preset.objective["filters"]
    paths = {c.get("path") for c in load_preset("photovoltaic-mp20").objective["components"]}
    assert paths == {"mp20-gap"}
    assert load_preset("photovoltaic").generator is None  # Perov-5: the default generator


def test_a_killed_run_resumes_without_rescoring_or_rerelaxing(tmp_path, reference_csv):
    CALLS.clear()
    make_loop(tmp_path / "straight", reference_csv, rounds=3).run()
    straight = store_rows(tmp_path / "straight")
    straight_calls = list(CALLS)

    CALLS.clear()
    with pytest.raises(Interrupt):  # killed during round 2's relaxations
        make_loop(tmp_path / "killed", reference_csv, rounds=3, relax_fn=interrupting_relax).run()
    partial_candidates, partial_followups = store_rows(tmp_path / "killed")
    assert {c[2] for c in partial_candidates} == {1, 2} and len(partial_followups) == 4
    with pytest.raises(MolgenError, match="already holds"):
        make_loop(tmp_path / "killed", reference_csv).run()
    CALLS.clear()
    make_loop(tmp_path / "killed", reference_csv, rounds=3).run(resume=True)
    assert len(CALLS) == 1  # only the relaxation the kill interrupted
    assert store_rows(tmp_path / "killed") == straight  # same candidates, keys, scores and relaxations, round 3 included
    assert len(straight_calls) == 5


def test_polymorph_search_resamples_the_best_formulas_and_resumes(tmp_path, reference_csv):
    """The round's two best formulas come back in fresh structures of the same
    cell, scored and stored beside the proposals but outside their funnel; a
    killed run resumes to the same store."""
    from molgen.domains.crystal import CrystalDomain
    from molgen.loops.polymorphs import cell_formula

    domain = CrystalDomain()
    polymorphs = {"formulas": 2, "samples": 4}
    CALLS.clear()
    make_loop(tmp_path / "straight", reference_csv, polymorphs=polymorphs).run()
    out = tmp_path / "straight"
    rounds = csv_rows(out / "rounds.csv")
    resampled = csv_rows(out / "polymorphs.csv")
    candidates, _ = store_rows(out)
    assert [int(r["polymorph_formulas"]) for r in rounds] == [2, 2]
    assert [int(r["polymorph_sampled"]) for r in rounds] == [8, 8]
    assert len(candidates) == sum(int(r["new"]) + int(r["polymorph_new"]) for r in rounds)
    assert sum(int(r["polymorph_new"]) for r in rounds) > 0
    by_key = {c[0]: c for c in candidates}
    for r in rounds:
        step = int(r["round"])
        mine = [x for x in resampled if int(x["round"]) == step]
        assert len(mine) == int(r["polymorph_distinct"])
        # The cells are those of the round's two best distinct formulas among its proposals that passed every filter.
        resampled_keys = {x["key"] for x in mine}
        proposals = sorted((c for c in candidates if c[2] == step and c[4] is None and c[0] not in resampled_keys),
                           key=lambda c: -c[3])
        best: dict[str, str] = {}
        for c in proposals:
            structure = domain.parse(c[1])
            best.setdefault(structure.composition.reduced_formula, cell_formula(structure))
        assert {x["cell"] for x in mine} == set(list(best.values())[:2])
        for x in mine:
            if x["new"] == "True":  # stored with exactly the cell's atoms
                assert cell_formula(domain.parse(by_key[x["key"]][1])) == x["cell"]

    CALLS.clear()
    with pytest.raises(Interrupt):  # killed during round 2's relaxations
        make_loop(tmp_path / "killed", reference_csv, relax_fn=interrupting_relax, polymorphs=polymorphs).run()
    make_loop(tmp_path / "killed", reference_csv, polymorphs=polymorphs).run(resume=True)
    assert store_rows(tmp_path / "killed") == store_rows(out)
    assert csv_rows(tmp_path / "killed" / "polymorphs.csv") == resampled


def test_composition_search_expands_the_run_best_first_and_resumes(tmp_path, reference_csv):
    """``frontier = "run"`` with ``neighbours``: each round resamples the best
    formulas of the whole run not resampled before, plus their nearest
    one-element swaps; no formula is planned twice, and a killed run resumes
    to the same store and plan."""
    from pymatgen.core import Composition

    polymorphs = {"formulas": 2, "samples": 2, "neighbours": 2, "frontier": "run"}
    CALLS.clear()
    make_loop(tmp_path / "straight", reference_csv, polymorphs=polymorphs).run()
    out = tmp_path / "straight"
    plan = csv_rows(out / "polymorph_formulas.csv")
    rounds = csv_rows(out / "rounds.csv")
    candidates, _ = store_rows(out)
    assert len({x["formula"] for x in plan}) == len(plan)  # never planned twice
    for r in rounds:
        mine = [x for x in plan if int(x["round"]) == int(r["round"])]
        chosen = [x for x in mine if x["role"] == "chosen"]
        assert len(chosen) == int(r["polymorph_formulas"]) == 2
        assert len(mine) - len(chosen) == int(r["polymorph_neighbours"]) == 4
        # The chosen formulas are the best-scoring ones that passed every filter, among all candidates
        # stored before this round's stage, whose formulas no earlier round planned.
        earlier = {x["formula"] for x in plan if int(x["round"]) < int(r["round"])}
        step, stage_now = int(r["round"]), _stage_keys(out, int(r["round"]))
        ranked = sorted((c for c in candidates if (c[2] < step or (c[2] == step and c[0] not in stage_now))
                         and c[4] is None and c[3] is not None and c[3] > 0 and c[0].split("#")[0] not in earlier),
                        key=lambda c: -c[3])
        best: list[str] = []
        for c in ranked:
            formula = c[0].split("#")[0]
            if formula not in best:
                best.append(formula)
        assert [x["formula"] for x in chosen] == best[:2]
        for x in mine:
            if x["role"] == "neighbour":  # one element of a chosen cell swapped, the counts kept
                parents = [Composition(c["cell"]) for c in chosen]
                mine_comp = Composition(x["cell"])
                assert any(sorted(p.values()) == sorted(mine_comp.values()) and len(set(p) & set(mine_comp)) == len(p) - 1
                           for p in parents)
    CALLS.clear()
    with pytest.raises(Interrupt):  # killed during round 2's relaxations
        make_loop(tmp_path / "killed", reference_csv, relax_fn=interrupting_relax, polymorphs=polymorphs).run()
    make_loop(tmp_path / "killed", reference_csv, polymorphs=polymorphs).run(resume=True)
    assert store_rows(tmp_path / "killed") == store_rows(out)
    assert csv_rows(tmp_path / "killed" / "polymorph_formulas.csv") == plan


def _stage_keys(out, step: int) -> set[str]:
    """Keys a round's resampling stage produced (polymorphs.csv), to tell them from its proposals."""
    return {x["key"] for x in csv_rows(out / "polymorphs.csv") if int(x["round"]) == step}


def test_polymorph_search_can_feed_the_generator_update(tmp_path, reference_csv):
    """``learn = true``: the agent also steps on the resampled structures, so
    after the same round its weights differ from a run that only stores them."""
    import torch

    agents = {}
    for learn in (False, True):
        loop = make_loop(tmp_path / str(learn), reference_csv, rounds=1,
                         polymorphs={"formulas": 2, "samples": 4, "learn": learn})
        loop.run()
        agents[learn] = [p.detach().clone() for p in loop.strategy.agent.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(agents[False], agents[True]))


def test_polymorph_stage_refuses_bad_settings_before_the_first_round(tmp_path, reference_csv):
    from molgen.loops.discovery import MaterialsDiscovery as Loop

    with pytest.raises(MolgenError, match="unknown data set 'no-such-templates'"):
        make_loop(tmp_path / "a", reference_csv, polymorphs={"formulas": 2, "method": "substitution", "templates": ["no-such-templates"]})
    loop = make_loop(tmp_path / "b", reference_csv)  # a valid loop, rebuilt without a structure predictor
    loop.config.polymorphs = loop.config.polymorphs.model_copy(update={"formulas": 2})
    with pytest.raises(MolgenError, match="structure_predictor"):
        Loop(loop.strategy, loop.objective, tmp_path / "b", loop.config)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_needs_a_run(tmp_path, reference_csv):
    with pytest.raises(MolgenError, match="no discovery run"):
        make_loop(tmp_path / "empty", reference_csv).run(resume=True)


def test_presets_load_and_bad_presets_are_named(tmp_path):
    from molgen.workflows.discovery import PRESETS, load_preset

    for name in PRESETS:
        preset = load_preset(name)
        assert preset.discovery.report.window == (1.1, 1.8)
        assert {f["type"] for f in preset.objective["filters"]} >= {"structure_valid", "composition_valid", "excluded_elements", "novelty"}
    with pytest.raises(ConfigError, match="photovoltaic"):
        load_preset("no-such-preset")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[objective]\ncomponents = [{type = "qed"}]\n[discovery]\nroundz = 3\n')
    with pytest.raises(ConfigError, match="roundz"):
        load_preset(str(bad))


def test_discover_command_runs_a_preset_file_and_resumes(tmp_path, capsys):
    from molgen.cli.main import main

    preset = tmp_path / "quick.toml"
    preset.write_text(
        'name = "quick"\n[objective]\nname = "quick"\n'
        '[[objective.components]]\ntype = "band_gap"\npath = "perov5-gap"\noutput = "p_nonmetal"\n'
        '[[objective.filters]]\ntype = "composition_valid"\nmin = 1\n'
        '[[objective.filters]]\ntype = "excluded_elements"\nelements = ["Pb"]\nmax = 0\n'
        '[discovery]\nrounds = 1\nper_round = 16\n[discovery.relax]\nper_round = 0\n'
    )
    out = tmp_path / "run"
    assert main(["discover", "--preset", str(preset), "--out", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "round 1: 16 sampled" in text and "1 rounds" in text
    assert text.index("stability is not checked") < text.index("round 1:")  # said up front
    assert main(["discover", "--resume", "--rounds", "2", "--out", str(out)]) == 0
    assert "round 2:" in capsys.readouterr().out
    with (out / "rounds.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2
    assert main(["discover", "--generator", "zinc250k", "--preset", str(preset), "--out", str(tmp_path / "smiles")]) == EXIT_USER_ERROR
    assert "crystal generator" in capsys.readouterr().err


@needs_mirror
def test_known_gap_sanity_component_reads_true_gaps():
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.scoring.components import build_component

    domain = CrystalDomain()
    loaded = load_texts("perov-5-val", domain, limit=20, seed=0)
    structures = [domain.parse(t) for t in loaded.texts]
    component = build_component("known_property", {"column": "dir_gap", "source": ["perov-5-val"]}, "gap")
    values, reasons = component(structures + [domain.parse(SMALL_CRYSTALS[0]), None])
    np.testing.assert_allclose(values[:20], loaded.targets["dir_gap"], atol=1e-9)
    assert reasons[20] == "gap: not a known structure" and reasons[21] == "invalid object"



def _cubic(species, coords, a=4.0):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), species, coords)


def test_known_property_falls_back_to_the_nearest_known_composition(tmp_path):
    """Exact match first; then the median over known polymorphs of the formula;
    with ``chemical_system``, the known stoichiometry nearest in atomic fractions."""
    from molgen.scoring.components import build_component

    rock_salt = _cubic(["Na"] * 4 + ["Cl"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                                                  [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]], a=5.6)
    caesium_chloride = _cubic(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=3.3)
    na3cl = _cubic(["Na", "Na", "Na", "Cl"], [[0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 0]])
    known = tmp_path / "known.csv"
    with known.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cif", "gap"])
        for structure, gap in ((rock_salt, 5.0), (caesium_chloride, 3.0), (na3cl, 1.0)):
            writer.writerow([structure.to(fmt="cif"), gap])
    zinc_blende = _cubic(["Na"] * 4 + ["Cl"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.25, 0.25, 0.25],
                                                   [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]], a=6.0)
    na2cl = _cubic(["Na", "Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    nacl2 = _cubic(["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    kbr = _cubic(["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=3.9)
    queries = [rock_salt, zinc_blende, na2cl, nacl2, kbr]

    def score(fallback):
        component = build_component("known_property", {"column": "gap", "source": [str(known)], "fallback": fallback}, "gap")
        return component(queries)

    values, reasons = score("chemical_system")
    assert values[0] == 5.0  # an exact match keeps its own value
    assert values[1] == 4.0  # a new NaCl polymorph: median of the two known ones
    assert values[2] == 1.0  # Na2Cl is nearer Na3Cl (L1 0.17) than NaCl (0.33)
    assert values[3] == 4.0  # NaCl2 is nearest NaCl
    assert np.isnan(values[4]) and reasons[4] == "gap: no known compound of this chemical system"
    values, reasons = score("formula")
    assert values[:2].tolist() == [5.0, 4.0] and np.isnan(values[2:]).all()
    assert reasons[2] == "gap: no known compound of this formula"
    values, reasons = score("none")
    assert values[0] == 5.0 and np.isnan(values[1:]).all() and reasons[1] == "gap: not a known structure"
    # nearest: any chemical system, shared elements counting. Na3Br is nearest Na3Cl (L1 0.5, NaCl 1.0);
    # KBr shares nothing (L1 2 to all three): their median.
    na3br = na3cl.copy()
    na3br.replace_species({"Cl": "Br"})
    component = build_component("known_property", {"column": "gap", "source": [str(known)], "fallback": "nearest"}, "gap")
    values, reasons = component([rock_salt, na2cl, na3br, kbr])
    assert values.tolist() == [5.0, 1.0, 1.0, 3.0] and reasons == [None] * 4
    with pytest.raises(ConfigError):
        build_component("known_property", {"column": "gap", "source": [str(known)], "fallback": "somewhere"}, "gap")


def test_known_proximity_grades_structure_formula_and_stoichiometry(tmp_path):
    """1 for a known structure, ``polymorph`` for a known formula in a new
    structure, decaying with the L1 distance to the nearest known formula,
    0 outside the known chemical systems."""
    from molgen.scoring.components import build_component

    rock_salt = _cubic(["Na"] * 4 + ["Cl"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                                                  [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]], a=5.6)
    known = tmp_path / "known.csv"
    with known.open("w", newline="") as handle:
        csv.writer(handle).writerows([["cif"], [rock_salt.to(fmt="cif")]])
    caesium_chloride = _cubic(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=3.3)
    na2cl = _cubic(["Na", "Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    kbr = _cubic(["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=3.9)
    component = build_component("known_proximity", {"source": [str(known)], "scale": 0.2, "polymorph": 0.6}, "near")
    values, reasons = component([rock_salt, caesium_chloride, na2cl, kbr])
    distance = abs(2 / 3 - 0.5) + abs(1 / 3 - 0.5)  # Na2Cl vs NaCl
    np.testing.assert_allclose(values, [1.0, 0.6, 0.6 * np.exp(-distance / 0.2), 0.0], atol=1e-9)
    assert reasons == [None] * 4
    with pytest.raises(ConfigError):
        build_component("known_proximity", {"source": [str(known)], "scale": 0.0}, "near")
    # Across chemical systems, shared elements count: NaBr shares Na with NaCl (L1 distance 1), KBr none (2).
    nabr = _cubic(["Na", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=3.6)
    anywhere = build_component("known_proximity", {"source": [str(known)], "scale": 0.2, "polymorph": 0.6,
                                                   "across_systems": True}, "near")
    values, _ = anywhere([rock_salt, na2cl, nabr, kbr])
    np.testing.assert_allclose(values, [1.0, 0.6 * np.exp(-distance / 0.2), 0.6 * np.exp(-1 / 0.2), 0.6 * np.exp(-2 / 0.2)],
                               atol=1e-12)


def test_the_report_counts_a_gap_only_for_predicted_non_metals(tmp_path, reference_csv):
    loop = make_loop(tmp_path / "run", reference_csv)
    comp = lambda p, g: {"p_nonmetal": {"raw": p}, "gap_if_nonmetal": {"raw": g}}  # noqa: E731
    shipped = loop.report.decision_threshold()  # the gap model's own, F1-optimal on Perov-5 validation
    assert 0.05 < shipped < 0.5
    assert loop.report.predicted_gap(comp(shipped + 0.01, 1.4)) == 1.4
    assert loop.report.predicted_gap(comp(shipped - 0.01, 1.4)) == 0.0  # a likely metal
    assert loop.report.predicted_gap(comp(None, 1.4)) == 0.0  # no classifier output: not counted
    loop.config.report.decision = 0.5
    assert loop.report.predicted_gap(comp(0.3, 1.4)) == 0.0
    loop.config.report.nonmetal = ""  # the sanity preset: the gap column is the true gap
    loop.config.report.gap = "band_gap"
    assert loop.report.predicted_gap({"band_gap": {"raw": 1.3}}) == 1.3


@pytest.mark.slow
def test_the_loop_relaxes_with_chgnet_on_a_local_ray_instance(tmp_path, reference_csv):
    """The same loop with the real potential, its relaxations sent to Ray (``--executor ray``)."""
    pytest.importorskip("ray")
    pytest.importorskip("chgnet")
    from molgen.core.executors import RayExecutor
    from molgen.physics.relaxation import relax_structure

    loop = make_loop(tmp_path / "ray", reference_csv, rounds=1, relax_fn=relax_structure)
    loop.config.relax.per_round, loop.config.relax.settings = 2, {"steps": 60}
    with RayExecutor(num_cpus=2) as executor:
        loop.executor = executor
        result = loop.run()
    _, followups = store_rows(result.out_dir)
    assert len(followups) == 2
    assert all(f[2] in ("ok", "unconverged", "rejected", "diverged", "failed") for f in followups)
    assert any(f[2] in ("ok", "unconverged") for f in followups), followups


def test_gap_directness_compares_the_direct_and_indirect_gap_models():
    from molgen.domains.crystal import CrystalDomain
    from molgen.scoring.components import build_component
    from molgen.scoring.transforms import LinearClamp

    domain = CrystalDomain()
    structures = [domain.parse(t) for t in SMALL_CRYSTALS] + [None]
    same = build_component("gap_directness", {"direct": "perov5-gap", "indirect": "perov5-gap"})
    values, reasons = same(structures)
    assert np.all(values[:-1] == 0.0) and reasons[-1] == "invalid object"  # one model: every gap is "direct"
    both = build_component("gap_directness", {})  # shipped direct and indirect Perov-5 models
    values, _ = both(structures[:-1])
    assert np.isfinite(values).all() and np.abs(values).max() > 0
    preference = LinearClamp(x_at_0=0.5, x_at_1=0.0).apply(values)
    assert np.all((preference >= 0) & (preference <= 1))
    assert np.array_equal(preference == 1.0, values <= 0.0)


def test_reward_shaping_repeats_buckets_and_unstable_relaxations(tmp_path, reference_csv):
    from molgen.domains.crystal import CrystalDomain

    domain = CrystalDomain()
    loop = make_loop(tmp_path / "run", reference_csv)
    srtio3 = domain.parse(SMALL_CRYSTALS[1])
    polymorph = srtio3.copy()
    polymorph.replace_species({"Sr": "Ti", "Ti": "Sr"})  # same formula, another structure
    keys = [loop.index.add(srtio3), loop.index.add(polymorph), loop.index.add(domain.parse(SMALL_CRYSTALS[0])), None]
    assert keys[:2] == ["SrTiO3", "SrTiO3#2"] and loop.index.rank(keys[1]) == 2
    scores = [0.8, 0.6, 0.4, float("nan")]
    unstable = {keys[2]: {"status": "ok", "result": {"formation_energy_per_atom": 0.3}}}
    assert loop.shape_rewards(scores, keys, set(), {}).tolist() == [0.8, 0.6, 0.4, 0.0]
    loop.config.formula_bucket = 1
    assert loop.shape_rewards(scores, keys, set(), {}).tolist() == [0.8, 0.0, 0.4, 0.0]
    loop.config.repeat_reward = 0.5
    assert loop.shape_rewards(scores, keys, {keys[0]}, unstable).tolist() == [0.4, 0.0, 0.0, 0.0]  # gate 0 eV/atom


def test_predictor_component_reads_shipped_names_and_scales_per_atom():
    from molgen.domains.crystal import CrystalDomain
    from molgen.scoring.components import build_component

    srtio3 = CrystalDomain().parse(SMALL_CRYSTALS[1])
    per_cell, _ = build_component("predictor", {"path": "perov5-heat"}, "heat")([srtio3])
    per_atom, reasons = build_component("predictor", {"path": "perov5-heat", "per_atom": True}, "heat")([srtio3, None])
    assert per_atom[0] == pytest.approx(per_cell[0] / 5) and reasons[1] == "invalid object"
    with pytest.raises(ConfigError, match="no-such-model"):
        build_component("predictor", {"path": "no-such-model"}, "heat")


def test_bad_crystal_component_settings_are_named(tmp_path):
    from molgen.scoring.components import build_component

    with pytest.raises(ConfigError, match="Xx"):
        build_component("excluded_elements", {"elements": ["Pb", "Xx"]})
    with pytest.raises(ConfigError, match="missing.csv"):
        build_component("novelty", {"source": [str(tmp_path / "missing.csv")]})
    with pytest.raises(ConfigError, match="decision"):
        build_component("band_gap", {"path": "perov5-gap", "decision": 1.5})
    with pytest.raises(ConfigError, match="no shipped predictor|not-a-model"):
        build_component("gap_directness", {"indirect": "not-a-model"})
