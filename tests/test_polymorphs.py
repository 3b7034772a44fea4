"""Polymorph search by ion substitution (the loop's stage is tested in test_discovery.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pymatgen.core import Lattice, Structure

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


def test_generator_method_needs_a_structure_predictor():
    from molgen.core.errors import MolgenError
    from molgen.loops.polymorphs import resample

    with pytest.raises(MolgenError, match="structure predictor"):
        resample(object(), ["K1Br1"], PolymorphStageConfig(formulas=1, method="generator"), round_number=1)
