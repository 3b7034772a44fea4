"""Applicability domain: how far a molecule is from a predictor's training set.

A learned model is trustworthy near its training data and guesses far from
it. :class:`ApplicabilityDomain` keeps the training molecules' Morgan bits
(radius 2, 2048 bits, packed to bytes in ``model.safetensors``) and reports,
for any molecule, its **maximum Tanimoto similarity** to the training set and
the mean similarity to its ``k`` nearest training molecules. A molecule is
*in domain* when its maximum similarity reaches :attr:`threshold`, fitted by
default as the 5th percentile of the held-out (new-scaffold) calibration
molecules' maximum similarity: "at least as close as 95 % of the molecules
the calibration could check".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import DataError

__all__ = ["ApplicabilityDomain", "morgan_bits"]

_BITS = 2048


def morgan_bits(mols: Sequence[Chem.Mol | None], n_bits: int = _BITS) -> np.ndarray:
    """Morgan radius-2 bit vectors as a ``bool`` array ``[n, n_bits]`` (``None`` -> all zero)."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=n_bits)
    out = np.zeros((len(mols), n_bits), dtype=bool)
    for row, mol in enumerate(mols):
        if mol is not None:
            out[row] = generator.GetFingerprintAsNumPy(mol).astype(bool)
    return out


class ApplicabilityDomain:
    """Tanimoto distance of molecules to a reference (training) set.

    Args:
        k: Neighbours averaged by :meth:`similarity`'s ``"mean_k"`` output.
        quantile: Share of calibration molecules :meth:`fit_threshold` keeps
            in domain is ``1 - quantile``.
    """

    def __init__(self, k: int = 5, quantile: float = 0.05):
        self.k, self.quantile = k, quantile
        self.bits_: np.ndarray | None = None  # packed uint8 [n, n_bits / 8]
        self.threshold: float = 0.0

    def fit(self, mols: Sequence[Chem.Mol]) -> "ApplicabilityDomain":
        """Remember the training molecules.

        Returns:
            self.

        Raises:
            DataError: no molecules.
        """
        if len(mols) == 0:
            raise DataError("applicability domain: no training molecules")
        self.bits_ = np.packbits(morgan_bits(mols), axis=1)
        return self

    def similarity(self, mols: Sequence[Chem.Mol | None], chunk: int = 512) -> dict[str, np.ndarray]:
        """Similarity of each molecule to the training set.

        Args:
            mols: RDKit molecules (``None`` -> NaN).
            chunk: Molecules compared at a time (memory ``chunk * n_train`` floats).

        Returns:
            ``{"max": max Tanimoto, "mean_k": mean Tanimoto of the k nearest}``, each ``[n]``.
        """
        if self.bits_ is None:
            raise RuntimeError("ApplicabilityDomain is not fitted")
        train = np.unpackbits(self.bits_, axis=1).astype(np.float32)
        train_counts = train.sum(axis=1)
        query = morgan_bits(mols).astype(np.float32)
        best, mean_k = np.full(len(mols), np.nan), np.full(len(mols), np.nan)
        k = min(self.k, train.shape[0])
        for start in range(0, len(mols), chunk):
            q = query[start:start + chunk]
            both = q @ train.T  # shared on-bits, by a float matrix product (exact for counts < 2^24)
            union = q.sum(axis=1)[:, None] + train_counts[None, :] - both
            sim = np.where(union > 0, both / np.maximum(union, 1), 0.0)
            best[start:start + chunk] = sim.max(axis=1)
            mean_k[start:start + chunk] = -np.mean(np.partition(-sim, k - 1, axis=1)[:, :k], axis=1)
        missing = np.array([m is None for m in mols], dtype=bool)
        best[missing], mean_k[missing] = np.nan, np.nan
        return {"max": best, "mean_k": mean_k}

    def fit_threshold(self, max_similarity: np.ndarray) -> float:
        """Set :attr:`threshold` to the :attr:`quantile` of calibration molecules' max similarity.

        Args:
            max_similarity: ``similarity(calibration)["max"]``.

        Returns:
            The threshold.
        """
        values = np.asarray(max_similarity, dtype=float)
        values = values[np.isfinite(values)]
        self.threshold = float(np.quantile(values, self.quantile)) if len(values) else 0.0
        return self.threshold

    def in_domain(self, max_similarity: np.ndarray) -> np.ndarray:
        """``max_similarity >= threshold`` (False for NaN)."""
        values = np.asarray(max_similarity, dtype=float)
        return np.where(np.isfinite(values), values >= self.threshold, False)
