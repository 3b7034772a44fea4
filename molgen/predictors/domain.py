"""Applicability domain: how far a molecule is from a predictor's training set.

A learned model is trustworthy near its training data and guesses far from
it. :class:`ApplicabilityDomain` keeps the training molecules' Morgan bits
(radius 2, 2048 bits, packed to bytes in ``model.safetensors``) and reports,
for any molecule, its **maximum Tanimoto similarity** to the training set and
the mean similarity to its ``k`` nearest training molecules. A molecule is
*in domain* when its maximum similarity reaches :attr:`threshold`, fitted by
default as the 5th percentile of the held-out (new-scaffold) calibration
molecules' maximum similarity: "at least as close as 95 % of the molecules
the calibration could check". :class:`LatentDomain` adds the distance in a
neural model's own embedding (for predictors with an ``embed`` method).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import DataError

__all__ = ["ApplicabilityDomain", "LatentDomain", "morgan_bits"]

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


class LatentDomain:
    """Distance of molecules to a reference set in a model's learned embedding.

    Tanimoto on fixed fingerprints says whether the *substructures* are
    familiar; the distance in the embedding a trained network actually uses
    says whether the *model* has seen something like the molecule. Embeddings
    are standardised on the reference rows; the distance of a molecule is the
    mean Euclidean distance to its ``k`` nearest reference rows divided by the
    median of the same quantity among the reference rows themselves (leave
    one out), so 1 is "as close as a typical training molecule" and larger is
    farther out.

    Args:
        k: Neighbours averaged.
        max_reference: Reference rows kept (a seeded subsample beyond this,
            bounding memory and time on large training sets).
        seed: Seed of the subsample.
    """

    def __init__(self, k: int = 5, max_reference: int = 5000, seed: int = 0):
        self.k, self.max_reference, self.seed = k, max_reference, seed
        self.reference_: np.ndarray | None = None  # standardised [m, d] float32
        self.center_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.typical_: float = 1.0

    def fit(self, embeddings: np.ndarray) -> "LatentDomain":
        """Remember the reference (training) embeddings.

        Args:
            embeddings: ``[n, d]`` (rows with NaN are ignored).

        Returns:
            self.

        Raises:
            DataError: fewer than two finite rows.
        """
        x = np.asarray(embeddings, dtype=np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) < 2:
            raise DataError("latent domain: need at least two training embeddings")
        if len(x) > self.max_reference:
            x = x[np.random.default_rng(self.seed).choice(len(x), self.max_reference, replace=False)]
        self.center_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 1e-8, x.std(axis=0), 1.0)
        self.reference_ = ((x - self.center_) / self.scale_).astype(np.float32)
        self.typical_ = 1.0
        own = self._raw(self.reference_, leave_one_out=True)
        self.typical_ = float(np.median(own)) or 1.0
        return self

    def _raw(self, z: np.ndarray, leave_one_out: bool = False, chunk: int = 1024) -> np.ndarray:
        ref = self.reference_.astype(np.float64)
        ref_sq = (ref ** 2).sum(axis=1)
        k = min(self.k, len(ref) - (1 if leave_one_out else 0))
        out = np.empty(len(z))
        for start in range(0, len(z), chunk):
            q = z[start:start + chunk].astype(np.float64)
            d2 = (q ** 2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * q @ ref.T
            d = np.sqrt(np.maximum(d2, 0.0))
            if leave_one_out:
                d[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf
            out[start:start + chunk] = np.mean(np.partition(d, k - 1, axis=1)[:, :k], axis=1)
        return out

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """Relative latent distance of each row (NaN rows stay NaN).

        Args:
            embeddings: ``[n, d]`` from the same model as :meth:`fit`'s.

        Returns:
            ``[n]``: 1 = as close as a typical training molecule to its neighbours.
        """
        if self.reference_ is None:
            raise RuntimeError("LatentDomain is not fitted")
        x = np.asarray(embeddings, dtype=np.float64)
        out = np.full(len(x), np.nan)
        ok = np.isfinite(x).all(axis=1) if len(x) else np.zeros(0, dtype=bool)
        if ok.any():
            out[ok] = self._raw(((x[ok] - self.center_) / self.scale_).astype(np.float32)) / self.typical_
        return out
