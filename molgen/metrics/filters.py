"""MOSES's molecular filters: medicinal-chemistry (MCF) and PAINS substructure
alerts, allowed elements, no formal charge, no ring of 8 or more atoms.

The alerts are MOSES's 22 MCF SMARTS (shipped in ``data/``) and the 480 PAINS
SMARTS that RDKit ships (``RDDataDir/Pains/wehi_pains.csv``, RDKit's curated
edit of the WEHI file that MOSES also uses). Several alerts spell hydrogens out;
MOSES matches them against the molecule with explicit hydrogens added. Here
they are parsed with ``mergeHs`` (hydrogens become H-count queries) and matched
against the molecule as it is, after a pattern-fingerprint screen that skips
alerts whose required bits the molecule lacks. Both shortcuts are exact (the
tests compare them with the explicit-hydrogen matching) and make the filters
about 10x faster.
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from importlib import resources

from rdkit import Chem, RDConfig

from molgen.properties.substructure import SubstructureScreen

#: Elements MOSES allows in a molecule that passes its filters.
MOSES_ALLOWED_ELEMENTS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING_SIZE = 7


def alert_smarts() -> list[str]:
    """The SMARTS of every alert: MOSES's MCF, then RDKit's PAINS."""
    text = resources.files("molgen.metrics").joinpath("data/moses_mcf.csv").read_text()
    mcf = [row["smarts"] for row in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))]
    pains_path = os.path.join(RDConfig.RDDataDir, "Pains", "wehi_pains.csv")
    with open(pains_path, newline="") as handle:
        pains = [row[0] for row in csv.reader(handle) if row]
    return mcf + pains


@lru_cache(maxsize=1)
def _alerts() -> SubstructureScreen:
    return SubstructureScreen([Chem.MolFromSmarts(smarts, mergeHs=True) for smarts in alert_smarts()])


@lru_cache(maxsize=1)
def _explicit_h_alerts() -> list[Chem.Mol]:
    return [Chem.MolFromSmarts(smarts) for smarts in alert_smarts()]


def matches_alert(mol: Chem.Mol, *, explicit_hydrogens: bool = False) -> bool:
    """Whether the molecule matches any MCF or PAINS alert.

    Args:
        mol: A sanitized molecule.
        explicit_hydrogens: Match the unmerged alerts against the molecule with
            explicit hydrogens, one by one, as MOSES does (slow; for checking).
    """
    if explicit_hydrogens:
        with_h = Chem.AddHs(mol)
        return any(with_h.HasSubstructMatch(p) for p in _explicit_h_alerts())
    return _alerts().any_match(mol)


def passes_moses_filters(mol: Chem.Mol, allowed: frozenset[str] = MOSES_ALLOWED_ELEMENTS) -> bool:
    """Whether a molecule passes the MOSES filters.

    A molecule fails when it has a ring of 8 or more atoms, a charged atom, an
    element outside ``allowed``, or matches an MCF or PAINS alert.

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
    return not matches_alert(mol)
