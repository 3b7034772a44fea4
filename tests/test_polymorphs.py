"""Polymorph search by ion substitution (the loop's stage is tested in test_discovery.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
import numpy as np
from pymatgen.core import Composition, Lattice, Structure

from molgen.domains.crystal.substitution import SubstitutionTemplates
from molgen.loops.polymorphs import PolymorphStageConfig, cell_formula, substitutions


def _cubic(species, coords, a):
    return Structure(Lattice.cubic(a), species, coords)


ROCK_SALT = _cubic(["Na"] * 4 + ["Cl"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                                              [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]], 5.6)
CAESIUM_CHLORIDE = _cubic(["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], 4.1)
FLUORITE_LIKE = _cubic(["Ca", "F", "F"], [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]], 5.5)


def test_substitutions_try_every_cell_size_and_rank_per_site():
    templates = SubstitutionTemplates([ROCK_SALT, CAESIUM_CHLORIDE, FLUORITE_LIKE])
    # A candidate written in a 2-atom cell still gets the 8-atom rock-salt prototype.
    found = substitutions(templates, "K1Br1", k=5, max_atoms=8)
    assert sorted(len(s) for s in found) == [2, 8]
    assert {s.composition.reduced_formula for s in found} == {"KBr"}
    # Na -> K is a closer swap than Cs -> K, so rock salt ranks first although its cell is 4x larger.
    assert len(found[0]) == 8 and found[0].composition["K"] == 4
    assert [len(s) for s in substitutions(templates, "K4Br4", k=5, max_atoms=4)] == [2]
    assert substitutions(templates, "K1Br3", k=5, max_atoms=8) == []  # no AB3 template
    assert cell_formula(found[0]) == "K4Br4"


def test_substitution_needs_templates():
    with pytest.raises(ValidationError, match="templates"):
        PolymorphStageConfig(formulas=2, method="substitution")
    PolymorphStageConfig(formulas=0, method="substitution")  # off: nothing to check


@pytest.mark.parametrize("bad", [{"frontier": "everywhere"}, {"depth": 0}, {"neighbours": -1}])
def test_composition_search_settings_are_checked(bad):
    with pytest.raises(ValidationError, match=next(iter(bad))):
        PolymorphStageConfig(formulas=2, **bad)


def test_generator_method_needs_a_structure_predictor():
    from molgen.core.errors import MolgenError
    from molgen.loops.polymorphs import resample

    with pytest.raises(MolgenError, match="structure predictor"):
        resample(object(), ["K1Br1"], PolymorphStageConfig(formulas=1, method="generator"), round_number=1)


def test_neighbour_cells_swap_one_element_nearest_first_and_skip_known_formulas():
    from molgen.domains.crystal.substitution import element_features
    from molgen.loops.polymorphs import neighbour_cells

    pool = ["Li", "Na", "K", "Rb", "F", "Cl", "Br", "I"]
    skip = {"KCl"}
    cells = neighbour_cells("Na4Cl4", 4, pool, skip)
    assert len(cells) == 4
    distances = []
    for cell in cells:
        composition = Composition(cell)
        assert sorted(composition.values()) == [4, 4]  # the site counts are kept
        kept, = {"Na", "Cl"} & {el.symbol for el in composition}  # exactly one element swapped
        old = ({"Na", "Cl"} - {kept}).pop()
        new = ({el.symbol for el in composition} - {kept}).pop()
        distances.append(float(np.linalg.norm(element_features(old) - element_features(new))))
    assert distances == sorted(distances)
    formulas = [Composition(c).reduced_formula for c in cells]
    assert "KCl" not in formulas and len(set(formulas)) == 4
    assert not set(neighbour_cells("Na4Cl4", 4, pool, skip | set(formulas))) & set(cells)


def test_plan_cells_search_the_run_best_first_and_deepen_the_best():
    from molgen.loops.polymorphs import plan_cells, substitutions

    best_first = [ROCK_SALT, CAESIUM_CHLORIDE, FLUORITE_LIKE]
    pool = ["Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "F", "Cl", "Br"]
    run = PolymorphStageConfig(formulas=2, neighbours=1, frontier="run", depth=2, samples=3)
    resampled = {"NaCl": 2}  # resampled twice before: at depth 2, done
    plan = plan_cells(best_first, run, resampled, pool)
    assert plan[:2] == [("Cs1Cl1", "chosen", 0), ("Ca1F2", "chosen", 0)]
    assert [role for _, role, _ in plan] == ["chosen", "chosen", "neighbour", "neighbour"]
    assert len(resampled) == 5 and resampled["CsCl"] == 1
    # Next round the same best formulas come back once more, with the next structures (offset = samples).
    again = plan_cells(best_first, run, resampled, pool)
    assert [(cell, offset) for cell, role, offset in again if role == "chosen"] == [("Cs1Cl1", 3), ("Ca1F2", 3)]
    assert all(Composition(cell).reduced_formula not in {"CsCl", "CaF2", "NaCl"} for cell, role, _ in again if role == "neighbour")
    assert [role for _, role, _ in plan_cells(best_first, run, resampled, pool)] == []  # CsCl, CaF2 now at depth 2 too
    # frontier = "round": the round's own best formulas are chosen whatever earlier rounds did.
    round_plan = plan_cells(best_first, run.model_copy(update={"frontier": "round", "neighbours": 0}), resampled, pool)
    assert [cell for cell, _, _ in round_plan] == ["Na4Cl4", "Cs1Cl1"]
    # The offset walks down the substitution ranking.
    templates = SubstitutionTemplates([ROCK_SALT, CAESIUM_CHLORIDE, FLUORITE_LIKE])
    first_two = substitutions(templates, "K1Br1", k=2, max_atoms=8)
    assert [len(s) for s in substitutions(templates, "K1Br1", k=1, max_atoms=8, offset=1)] == [len(first_two[1])]
    assert substitutions(templates, "K1Br1", k=2, max_atoms=8, offset=2) == []
