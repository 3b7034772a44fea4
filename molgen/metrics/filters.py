"""MOSES's molecular filters: medicinal-chemistry (MCF) and PAINS substructure
alerts, allowed elements, no formal charge, no ring of 8 or more atoms."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from rdkit import Chem
from rdkit.Chem import FilterCatalog

#: Elements MOSES allows in a molecule that passes its filters.
MOSES_ALLOWED_ELEMENTS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING_SIZE = 7


@lru_cache(maxsize=1)
def _mcf_patterns() -> tuple[Chem.Mol, ...]:
    text = resources.files("molgen.metrics").joinpath("data/moses_mcf.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(Chem.MolFromSmarts(row["smarts"]) for row in rows)


@lru_cache(maxsize=1)
def _pains_catalog() -> FilterCatalog.FilterCatalog:
    # RDKit ships the PAINS families A, B and C (480 alerts, Baell & Holloway 2010).
    params = FilterCatalog.FilterCatalogParams()
    params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    return FilterCatalog.FilterCatalog(params)


def passes_moses_filters(mol: Chem.Mol, allowed: frozenset[str] = MOSES_ALLOWED_ELEMENTS) -> bool:
    """Whether a molecule passes the MOSES filters.

    A molecule fails when it has a ring of 8 or more atoms, a charged atom, an
    element outside ``allowed``, a match to one of MOSES's MCF alerts or to
    RDKit's PAINS catalog. The alerts are matched on the molecule with explicit
    hydrogens, because several of them spell hydrogens out.

    Args:
        mol: A sanitized molecule.
        allowed: Allowed element symbols.

    Returns:
        True when the molecule passes.
    """
    if any(len(ring) > MAX_RING_SIZE for ring in mol.GetRingInfo().AtomRings()):
        return False
    for atom in mol.GetAtoms():
        if atom.GetFormalCharge() != 0 or atom.GetSymbol() not in allowed:
            return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(pattern) for pattern in _mcf_patterns()):
        return False
    return not _pains_catalog().HasMatch(with_h)
