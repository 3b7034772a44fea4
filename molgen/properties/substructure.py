"""Fast, exact matching of a fixed list of substructure patterns: a pattern
fingerprint screen skips every pattern whose required bits a molecule lacks
(RDKit's pattern fingerprints never rule out a true match), and only the
remaining candidates go through full substructure matching."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem, DataStructs

SCREEN_BITS = 2048


def pattern_bits(mol: Chem.Mol) -> np.ndarray:
    """RDKit pattern fingerprint as a boolean array."""
    bits = np.zeros(SCREEN_BITS, dtype=np.uint8)
    DataStructs.ConvertToNumpyArray(Chem.PatternFingerprint(mol, fpSize=SCREEN_BITS), bits)
    return bits.astype(bool)


class SubstructureScreen:
    """A list of query molecules with their screening fingerprints.

    Args:
        patterns: Query molecules (from SMARTS or SMILES).
    """

    def __init__(self, patterns: Sequence[Chem.Mol]) -> None:
        self.patterns = list(patterns)
        self._required = np.stack([pattern_bits(p) for p in self.patterns])

    def candidates(self, mol: Chem.Mol) -> np.ndarray:
        """Indices of the patterns the screen cannot rule out for ``mol``."""
        return np.flatnonzero(~(self._required & ~pattern_bits(mol)).any(axis=1))

    def any_match(self, mol: Chem.Mol) -> bool:
        """Whether any pattern matches."""
        return any(mol.HasSubstructMatch(self.patterns[i]) for i in self.candidates(mol))
