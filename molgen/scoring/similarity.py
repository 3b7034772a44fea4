"""Fingerprints and Tanimoto similarity to reference molecules, with the
fingerprint definitions GuacaMol and the PMO oracles use.

``ECFP4``/``ECFP6``/``FCFP4``/``FCFP6`` are unfolded Morgan *count*
fingerprints (radius 2 or 3, feature invariants for FCFP), ``AP`` the atom-pair
count fingerprint (distances up to 10 bonds), ``PHCO`` the Gobbi 2D
pharmacophore bit fingerprint; Tanimoto on count vectors is
``sum(min) / (sum(a) + sum(b) - sum(min))``. ``ECFP4-2048`` is the folded
2048-bit Morgan fingerprint common in REINVENT-style objectives.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import MolgenError


@lru_cache(maxsize=None)
def _generator(kind: str):
    if kind.startswith("ECFP") or kind.startswith("FCFP"):
        radius = {"4": 2, "6": 3}[kind[4]]
        invariants = rdFingerprintGenerator.GetMorganFeatureAtomInvGen() if kind.startswith("FCFP") else None
        # fpSize only folds the bit form (the -2048 kinds); sparse counts stay unfolded.
        return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=2048, atomInvariantsGenerator=invariants)
    if kind == "AP":
        return rdFingerprintGenerator.GetAtomPairGenerator(minDistance=1, maxDistance=10)
    raise KeyError(kind)


def _phco(mol: Chem.Mol):
    from rdkit.Chem.Pharm2D import Generate, Gobbi_Pharm2D

    return Generate.Gen2DFingerprint(mol, Gobbi_Pharm2D.factory)


FINGERPRINTS: dict[str, Callable[[Chem.Mol], object]] = {
    "ECFP4": lambda m: _generator("ECFP4").GetSparseCountFingerprint(m),
    "ECFP6": lambda m: _generator("ECFP6").GetSparseCountFingerprint(m),
    "FCFP4": lambda m: _generator("FCFP4").GetSparseCountFingerprint(m),
    "FCFP6": lambda m: _generator("FCFP6").GetSparseCountFingerprint(m),
    "AP": lambda m: _generator("AP").GetSparseCountFingerprint(m),
    "PHCO": _phco,
    "ECFP4-2048": lambda m: _generator("ECFP4-2048").GetFingerprint(m),
    "FCFP4-2048": lambda m: _generator("FCFP4-2048").GetFingerprint(m),
}


def fingerprint(mol: Chem.Mol, kind: str):
    """The ``kind`` fingerprint of ``mol`` (see :data:`FINGERPRINTS`).

    Raises:
        MolgenError: unknown kind, listing the valid ones.
    """
    try:
        fn = FINGERPRINTS[kind]
    except KeyError:
        raise MolgenError(f"unknown fingerprint {kind!r}; valid: {', '.join(FINGERPRINTS)}") from None
    return fn(mol)


class TanimotoSimilarity:
    """Tanimoto similarity of each molecule to one or several references.

    Args:
        references: Reference SMILES.
        fingerprint: A key of :data:`FINGERPRINTS`.
        aggregate: ``"max"`` or ``"mean"`` over the references.
        name: Component name.

    Raises:
        MolgenError: an unparsable reference or an unknown fingerprint.
    """

    def __init__(self, references: Sequence[str] | str, fingerprint: str = "ECFP4", aggregate: str = "max", name: str | None = None):
        refs = [references] if isinstance(references, str) else list(references)
        if not refs:
            raise MolgenError("similarity needs at least one reference molecule")
        if aggregate not in ("max", "mean"):
            raise MolgenError(f"similarity aggregate must be 'max' or 'mean', not {aggregate!r}")
        if fingerprint not in FINGERPRINTS:
            raise MolgenError(f"unknown fingerprint {fingerprint!r}; valid: {', '.join(FINGERPRINTS)}")
        mols = []
        for smiles in refs:
            mol = Chem.MolFromSmiles(smiles)
            if mol is None:
                raise MolgenError(f"reference SMILES {smiles!r} does not parse")
            mols.append(mol)
        self.kind = fingerprint
        self.aggregate = aggregate
        self.name = name or f"similarity_{fingerprint.lower()}"
        self.reference_fps = [FINGERPRINTS[fingerprint](m) for m in mols]

    def value(self, mol: Chem.Mol) -> float:
        """Similarity of one molecule."""
        fp = FINGERPRINTS[self.kind](mol)
        sims = DataStructs.BulkTanimotoSimilarity(fp, self.reference_fps)
        return float(max(sims) if self.aggregate == "max" else np.mean(sims))
