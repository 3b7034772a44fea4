"""Physicochemical properties used in antimicrobial-peptide design.

Biopython's ``ProteinAnalysis`` computes molecular weight, isoelectric point,
charge at a pH, GRAVY (Kyte-Doolittle), aromaticity and the instability
index; what it lacks is written here from the published scales: Eisenberg's
normalised consensus hydrophobicity and hydrophobic moment (Eisenberg et al.
1984), the Boman index (Boman 2003) and simple residue-class fractions.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: Eisenberg et al. (1984) normalised consensus hydrophobicity.
EISENBERG = {
    "A": 0.62, "R": -2.53, "N": -0.78, "D": -0.90, "C": 0.29, "Q": -0.85, "E": -0.74, "G": 0.48, "H": -0.40, "I": 1.38,
    "L": 1.06, "K": -1.50, "M": 0.64, "F": 1.19, "P": 0.12, "S": -0.18, "T": -0.05, "W": 0.81, "Y": 0.26, "V": 1.08,
}
#: Boman (2003) solubility scale (kcal/mol, cyclohexane-to-water transfer of side chains).
BOMAN = {
    "L": 4.92, "I": 4.92, "V": 4.04, "F": 2.98, "M": 2.35, "W": 2.33, "A": 1.81, "C": 1.28, "G": 0.94, "Y": -0.14,
    "T": -2.57, "S": -3.40, "H": -4.66, "Q": -5.54, "K": -5.55, "N": -6.64, "E": -6.81, "D": -8.72, "R": -14.92, "P": 0.0,
}
CATIONIC = frozenset("KR")
HYDROPHOBIC = frozenset("AILMFVW")


def _analysis(seq: str):
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    if not seq:
        raise ValueError("empty sequence")
    return ProteinAnalysis(seq)


def length(seq: str) -> float:
    """Number of residues."""
    return float(len(seq))


def net_charge(seq: str, ph: float = 7.0) -> float:
    """Net charge at ``ph`` (Biopython's pK set, termini included)."""
    return float(_analysis(seq).charge_at_pH(ph))


def isoelectric_point(seq: str) -> float:
    """pH of zero net charge (Biopython)."""
    return float(_analysis(seq).isoelectric_point())


def molecular_weight(seq: str) -> float:
    """Average mass in Da of the free (unmodified) peptide (Biopython)."""
    return float(_analysis(seq).molecular_weight())


def gravy(seq: str) -> float:
    """Grand average of hydropathy, Kyte-Doolittle scale (Biopython)."""
    return float(_analysis(seq).gravy())


def eisenberg_hydrophobicity(seq: str) -> float:
    """Mean Eisenberg consensus hydrophobicity per residue."""
    return float(np.mean([EISENBERG[ch] for ch in seq]))


def hydrophobic_moment(seq: str, angle: float = 100.0, window: int = 11) -> float:
    """Eisenberg hydrophobic moment per residue, the largest over sliding
    windows (the whole sequence when shorter than ``window``).

    Args:
        seq: Canonical sequence.
        angle: Rotation per residue in degrees (100 for an alpha helix).
        window: Window length.

    Returns:
        ``max_w |sum_i h_i exp(i * k * angle)| / len(w)``.
    """
    h = np.array([EISENBERG[ch] for ch in seq])
    theta = np.deg2rad(angle) * np.arange(len(h))
    vectors = h * np.exp(1j * theta)
    w = min(window, len(h))
    sums = np.convolve(vectors, np.ones(w), mode="valid")
    return float(np.abs(sums).max() / w)


def aromaticity(seq: str) -> float:
    """Fraction of F, W and Y (Biopython)."""
    return float(_analysis(seq).aromaticity())


def instability_index(seq: str) -> float:
    """Guruprasad instability index (Biopython); above 40 suggests unstable."""
    if len(seq) < 2:
        return float("nan")
    return float(_analysis(seq).instability_index())


def boman_index(seq: str) -> float:
    """Boman index: minus the mean side-chain solubility (kcal/mol); above ~2.5
    suggests protein-binding potential."""
    return float(-sum(BOMAN[ch] for ch in seq) / len(seq))


def cationic_fraction(seq: str) -> float:
    """Fraction of K and R."""
    return sum(ch in CATIONIC for ch in seq) / len(seq)


def hydrophobic_fraction(seq: str) -> float:
    """Fraction of A, I, L, M, F, V, W."""
    return sum(ch in HYDROPHOBIC for ch in seq) / len(seq)


#: Name -> function of every property, in report order.
PEPTIDE_PROPERTIES: dict[str, Callable[[str], float]] = {
    "length": length,
    "charge_pH7": net_charge,
    "pI": isoelectric_point,
    "mol_weight": molecular_weight,
    "gravy": gravy,
    "eisenberg_hydrophobicity": eisenberg_hydrophobicity,
    "hydrophobic_moment": hydrophobic_moment,
    "aromaticity": aromaticity,
    "instability_index": instability_index,
    "boman_index": boman_index,
    "cationic_fraction": cationic_fraction,
    "hydrophobic_fraction": hydrophobic_fraction,
}


def peptide_properties(seq: str) -> dict[str, float]:
    """Every property of :data:`PEPTIDE_PROPERTIES` for one canonical sequence
    (NaN where one is undefined)."""
    out = {}
    for name, fn in PEPTIDE_PROPERTIES.items():
        try:
            value = fn(seq)
        except (ValueError, KeyError, ZeroDivisionError):
            value = float("nan")
        out[name] = value if math.isfinite(value) else float("nan")
    return out
