"""Crystal structures: I/O, validity, matching, tokens and graph views."""

from molgen.domains.crystal.domain import CrystalDomain
from molgen.domains.crystal.graph import graph_to_structure, structure_to_graph
from molgen.domains.crystal.io import (
    from_ase,
    iter_structure_texts,
    parse_structure,
    to_ase,
    to_cif,
    to_poscar,
)
from molgen.domains.crystal.matching import (
    MatcherSettings,
    group_structures,
    same_structure,
)
from molgen.domains.crystal.text import CrystalTextCodec, CrystalTokenizer
from molgen.domains.crystal.validity import (
    ValidityRules,
    composition_is_valid,
    structure_is_valid,
)

__all__ = [
    "CrystalDomain",
    "CrystalTextCodec",
    "CrystalTokenizer",
    "MatcherSettings",
    "ValidityRules",
    "composition_is_valid",
    "from_ase",
    "graph_to_structure",
    "group_structures",
    "iter_structure_texts",
    "parse_structure",
    "same_structure",
    "structure_is_valid",
    "structure_to_graph",
    "to_ase",
    "to_cif",
    "to_poscar",
]
