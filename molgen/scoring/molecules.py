"""Molecule scoring functions: descriptors, atom counts, SMARTS, isomer
score, drug-likeness rules and structural alerts. Each is ``Mol -> float``
and becomes a component through :class:`molgen.scoring.components.PropertyComponent`."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import numpy as np
from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from molgen.core.errors import MolgenError
from molgen.properties import molecular

#: Descriptors by component name (GuacaMol's definitions: RDKit Crippen logP,
#: TPSA without S and P, Bertz CT, ring counts from rdMolDescriptors).
DESCRIPTORS: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": molecular.qed,
    "sa": molecular.sa_score,
    "logp": lambda m: Crippen.MolLogP(m),
    "molecular_weight": lambda m: Descriptors.MolWt(m),
    "tpsa": lambda m: rdMolDescriptors.CalcTPSA(m),
    "hbd": lambda m: float(Lipinski.NumHDonors(m)),
    "hba": lambda m: float(Lipinski.NumHAcceptors(m)),
    "rotatable_bonds": lambda m: float(rdMolDescriptors.CalcNumRotatableBonds(m)),
    "rings": lambda m: float(rdMolDescriptors.CalcNumRings(m)),
    "aromatic_rings": lambda m: float(rdMolDescriptors.CalcNumAromaticRings(m)),
    "heavy_atoms": lambda m: float(m.GetNumHeavyAtoms()),
    "bertz": lambda m: Descriptors.BertzCT(m),
    "atoms_with_h": lambda m: float(Chem.AddHs(m).GetNumAtoms()),
}


def atom_count(element: str) -> Callable[[Chem.Mol], float]:
    """Counter of ``element`` atoms (hydrogens made explicit when counting H)."""

    def count(mol: Chem.Mol) -> float:
        if element == "H":
            mol = Chem.AddHs(mol)
        return float(sum(1 for atom in mol.GetAtoms() if atom.GetSymbol() == element))

    return count


def parse_formula(formula: str) -> list[tuple[str, int]]:
    """``"C9H10N2O2PF2Cl"`` -> ``[("C", 9), ("H", 10), ...]`` (a missing count is 1).

    Raises:
        MolgenError: text that is not a molecular formula.
    """
    parts = re.findall(r"([A-Z][a-z]*)(\d*)", formula)
    if not parts or "".join(e + n for e, n in parts) != formula:
        raise MolgenError(f"{formula!r} is not a molecular formula like C9H10N2O2PF2Cl")
    return [(element, int(n) if n else 1) for element, n in parts]


class IsomerScore:
    """GuacaMol's isomer score: one Gaussian term (sigma 1) per element count
    of ``formula`` and one (sigma 2) for the total atom count with
    hydrogens, combined by the geometric (default) or arithmetic mean.

    Args:
        formula: Target molecular formula.
        mean: ``"geometric"`` or ``"arithmetic"``.
    """

    def __init__(self, formula: str, mean: str = "geometric"):
        if mean not in ("geometric", "arithmetic"):
            raise MolgenError(f"isomer mean must be geometric or arithmetic, not {mean!r}")
        self.targets = parse_formula(formula)
        self.total = sum(n for _, n in self.targets)
        self.mean = mean

    def __call__(self, mol: Chem.Mol) -> float:
        with_h = Chem.AddHs(mol)
        symbols = [atom.GetSymbol() for atom in with_h.GetAtoms()]
        terms = [np.exp(-0.5 * (symbols.count(el) - n) ** 2) for el, n in self.targets]
        terms.append(np.exp(-0.5 * ((len(symbols) - self.total) / 2.0) ** 2))
        if self.mean == "geometric":
            return float(np.prod(terms) ** (1.0 / len(terms)))
        return float(np.mean(terms))


class SmartsMatch:
    """1.0 when ``smarts`` matches (0.0 otherwise); ``inverse`` flips it
    (an exclusion).

    Raises:
        MolgenError: a SMARTS that does not parse.
    """

    def __init__(self, smarts: str, inverse: bool = False):
        pattern = Chem.MolFromSmarts(smarts)
        if pattern is None:
            raise MolgenError(f"SMARTS {smarts!r} does not parse")
        self.pattern = pattern
        self.inverse = inverse

    def __call__(self, mol: Chem.Mol) -> float:
        return float(mol.HasSubstructMatch(self.pattern) != self.inverse)


def lipinski_pass(mol: Chem.Mol) -> float:
    """1.0 when the rule of five holds with at most one violation (MW <= 500,
    logP <= 5, HBD <= 5, HBA <= 10), else 0.0."""
    violations = sum([
        Descriptors.MolWt(mol) > 500,
        Crippen.MolLogP(mol) > 5,
        Lipinski.NumHDonors(mol) > 5,
        Lipinski.NumHAcceptors(mol) > 10,
    ])
    return float(violations <= 1)


def veber_pass(mol: Chem.Mol) -> float:
    """1.0 when rotatable bonds <= 10 and TPSA <= 140 (Veber et al. 2002)."""
    return float(rdMolDescriptors.CalcNumRotatableBonds(mol) <= 10 and rdMolDescriptors.CalcTPSA(mol) <= 140)


@lru_cache(maxsize=None)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
    return FilterCatalog(params)


def alert_count(catalog: str) -> Callable[[Chem.Mol], float]:
    """Number of structural alerts of an RDKit FilterCatalog (``PAINS``, ``BRENK``, ...).

    Raises:
        MolgenError: unknown catalog.
    """
    name = catalog.upper()
    if not hasattr(FilterCatalogParams.FilterCatalogs, name):
        raise MolgenError(f"unknown alert catalog {catalog!r}; try PAINS, BRENK, NIH, ZINC")
    _catalog(name)

    def count(mol: Chem.Mol) -> float:
        return float(len(_catalog(name).GetMatches(mol)))

    return count
