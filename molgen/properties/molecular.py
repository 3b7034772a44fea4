"""Computed properties of RDKit molecules: logP, QED, SA score, weight and the
physico-chemical descriptors that GuacaMol's KL-divergence benchmark uses."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Callable

from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, RDConfig

PropertyFn = Callable[[Chem.Mol], float]


@lru_cache(maxsize=1)
def _sascorer():
    # The SA score (Ertl & Schuffenhauer 2009) ships in RDKit's Contrib folder,
    # which is not an importable package, so load it by path once.
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):
        raise ImportError(f"RDKit's SA_Score contribution is missing ({path}); reinstall rdkit")
    spec = importlib.util.spec_from_file_location("_molgen_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.readFragmentScores()
    return module


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility score, 1 (easy) to 10 (hard), RDKit Contrib's SA_Score.

    Args:
        mol: A sanitized molecule.

    Returns:
        The score.
    """
    return float(_sascorer().calculateScore(mol))


def logp(mol: Chem.Mol) -> float:
    """Wildman-Crippen logP."""
    return float(Crippen.MolLogP(mol))


def qed(mol: Chem.Mol) -> float:
    """Quantitative estimate of drug-likeness (Bickerton et al. 2012), RDKit's QED.

    Args:
        mol: A sanitized molecule.

    Returns:
        QED in (0, 1].
    """
    return float(QED.qed(mol))


def molecular_weight(mol: Chem.Mol) -> float:
    """Average molecular weight in g/mol, hydrogens included."""
    return float(Descriptors.MolWt(mol))


#: The four MOSES property distributions, under MOSES's metric names.
MOSES_PROPERTIES: dict[str, PropertyFn] = {
    "logP": logp,
    "SA": sa_score,
    "QED": qed,
    "weight": molecular_weight,
}

#: GuacaMol's nine physico-chemical descriptors: the first four are continuous
#: (compared through kernel density estimates), the rest integer counts
#: (compared through histograms).
GUACAMOL_DESCRIPTORS: dict[str, PropertyFn] = {
    # RDKit's Descriptors functions by name, as GuacaMol looks them up.
    name: getattr(Descriptors, name)
    for name in (
        "BertzCT",
        "MolLogP",
        "MolWt",
        "TPSA",
        "NumHAcceptors",
        "NumHDonors",
        "NumRotatableBonds",
        "NumAliphaticRings",
        "NumAromaticRings",
    )
}
GUACAMOL_CONTINUOUS = ("BertzCT", "MolLogP", "MolWt", "TPSA")
