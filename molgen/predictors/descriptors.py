"""RDKit 2D descriptors as model inputs, and their normalisation.

Chemprop's ``rdkit_2d_normalized`` features feed ~200 whole-molecule
descriptors (logP, TPSA, ring and atom counts, charges...) next to the learned
graph representation; on small data sets they carry most of what is known
about solubility and lipophilicity, and unlike a graph embedding they
extrapolate smoothly to new scaffolds. Chemprop normalises each descriptor
by a CDF fitted on a large library; here the normalisation is fitted on the
training molecules instead (:class:`DescriptorScaler`), so it needs no
shipped statistics and is saved with the model as two arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors

__all__ = ["DESCRIPTOR_NAMES", "DescriptorScaler", "rdkit_descriptors"]

#: Every RDKit 2D descriptor, in RDKit's order (the width of the feature vector).
#: The ``Ipc`` information content overflows to 1e30+ for big molecules; it is
#: replaced by its logarithm-friendly average form (``avg=True``) below.
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors._descList)

#: Values beyond this magnitude are clipped before scaling (a few descriptors
#: return 1e30-size numbers for exotic molecules; they would swamp the fit).
_CLIP = 1e6


def rdkit_descriptors(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """Raw RDKit 2D descriptors of molecules.

    Args:
        mols: RDKit molecules.

    Returns:
        ``float64`` array ``[n, len(DESCRIPTOR_NAMES)]``; a descriptor RDKit
        cannot compute for a molecule is 0 (and infinities are clipped), so a
        rare failure never breaks a batch.
    """
    functions = [fn for _, fn in Descriptors._descList]
    out = np.zeros((len(mols), len(functions)), dtype=np.float64)
    ipc = DESCRIPTOR_NAMES.index("Ipc") if "Ipc" in DESCRIPTOR_NAMES else -1
    RDLogger.DisableLog("rdApp.*")  # charge-model warnings on unusual atoms
    try:
        for row, mol in enumerate(mols):
            for col, fn in enumerate(functions):
                try:
                    out[row, col] = fn(mol) if col != ipc else Descriptors.Ipc(mol, avg=True)
                except Exception:  # noqa: BLE001 -- one failing descriptor must not sink the molecule
                    out[row, col] = 0.0
    finally:
        RDLogger.EnableLog("rdApp.*")
    out = np.nan_to_num(out, nan=0.0, posinf=_CLIP, neginf=-_CLIP)
    return np.clip(out, -_CLIP, _CLIP)


class DescriptorScaler:
    """Per-descriptor normalisation fitted on training molecules.

    ``z = clip((t(x) - mean) / std, -limit, limit)`` with the signed log
    ``t(x) = sign(x) log(1 + |x|)``: the log tames the heavy tails of counts
    and weights (so one big molecule does not set the scale), the clip keeps
    a molecule far outside the training range from saturating a network.
    Constant descriptors get std 1 (they become 0).

    Args:
        limit: Clip of the standardised values.
    """

    def __init__(self, limit: float = 6.0):
        self.limit = limit
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    @staticmethod
    def _transform(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.log1p(np.abs(x))

    def fit(self, raw: np.ndarray) -> "DescriptorScaler":
        """Fit on raw descriptors ``[n, d]`` (from :func:`rdkit_descriptors`).

        Returns:
            self.
        """
        t = self._transform(np.asarray(raw, dtype=np.float64))
        self.mean_ = t.mean(axis=0)
        std = t.std(axis=0)
        self.std_ = np.where(std > 1e-8, std, 1.0)
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Normalised descriptors ``[n, d]`` as ``float32``."""
        if self.mean_ is None:
            raise RuntimeError("DescriptorScaler is not fitted")
        z = (self._transform(np.asarray(raw, dtype=np.float64)) - self.mean_) / self.std_
        return np.clip(z, -self.limit, self.limit).astype(np.float32)
