"""A Gaussian process on molecular fingerprints with the Tanimoto kernel:
the surrogate of Bayesian optimisation on small measured sets.

With tens to a few hundred measurements (an ask/tell campaign's first
rounds) a deep ensemble is slow to refit and its spread is poorly
calibrated; an exact GP refits in milliseconds, its posterior variance
shrinks where measurements are and grows away from them, and its joint
posterior over a candidate pool lets a batch be chosen with the variance
each pick removes from its neighbours (GP-BUCB). The Tanimoto (Jaccard)
kernel on Morgan bits is the usual choice for molecules (GAUCHE, Griffiths
et al. 2023): positive definite, no length scale to fit.

Hyper-parameters (signal variance and noise on standardised targets) are
chosen by the log marginal likelihood over a small grid, so a fit is
deterministic.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import DataError

SIGNAL_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
NOISE_GRID = (1e-3, 1e-2, 0.05, 0.1, 0.2, 0.5)
_JITTER = 1e-8


def fingerprint_matrix(molecules: Sequence, radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """Morgan bit fingerprints as a dense ``float32`` 0/1 matrix.

    Args:
        molecules: RDKit molecules or SMILES strings.
        radius: Morgan radius (2 is ECFP4).
        n_bits: Fingerprint length.

    Returns:
        ``[N, n_bits]`` array.

    Raises:
        DataError: an entry is not a molecule or a parsable SMILES.
    """
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    rows = np.zeros((len(molecules), n_bits), dtype=np.float32)
    for i, item in enumerate(molecules):
        mol = Chem.MolFromSmiles(item) if isinstance(item, str) else item
        if mol is None:
            raise DataError(f"entry {i} ({item!r}) is not a molecule")
        rows[i] = generator.GetFingerprintAsNumPy(mol)
    return rows


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto similarity between the rows of two 0/1 matrices.

    Args:
        a: ``[N, D]`` fingerprints.
        b: ``[M, D]`` fingerprints.

    Returns:
        ``[N, M]`` similarities in [0, 1] (two empty fingerprints count as identical).
    """
    common = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - common
    return np.where(union > 0, common / np.maximum(union, 1e-12), 1.0).astype(np.float64)


class TanimotoGP:
    """Exact GP regression on Morgan fingerprints (Tanimoto kernel, constant mean).

    Args:
        radius: Morgan radius.
        n_bits: Fingerprint length.

    Attributes:
        signal: Chosen kernel variance (standardised units).
        noise: Chosen noise variance (standardised units).
    """

    def __init__(self, radius: int = 2, n_bits: int = 2048):
        self.radius, self.n_bits = radius, n_bits
        self.signal = self.noise = None
        self._x: np.ndarray | None = None

    def featurize(self, molecules: Sequence) -> np.ndarray:
        """Fingerprints of ``molecules`` (see :func:`fingerprint_matrix`)."""
        return fingerprint_matrix(molecules, self.radius, self.n_bits)

    def fit(self, molecules: Sequence, y: Sequence[float]) -> "TanimotoGP":
        """Condition on measured values.

        Args:
            molecules: RDKit molecules or SMILES.
            y: One finite value per molecule.

        Returns:
            self.

        Raises:
            DataError: no rows, a length mismatch or a non-finite value.
        """
        y = np.asarray(y, dtype=float).ravel()
        if len(y) == 0 or len(y) != len(molecules):
            raise DataError(f"a GP needs one value per molecule and at least one row (got {len(molecules)} molecules, {len(y)} values)")
        if not np.isfinite(y).all():
            raise DataError("GP targets must be finite (record failed measurements as failures, not as values)")
        self._x = self.featurize(molecules)
        self._offset = float(y.mean())
        self._scale = float(y.std()) or 1.0
        z = (y - self._offset) / self._scale
        gram = tanimoto(self._x, self._x)
        best = None
        for signal in SIGNAL_GRID:
            for noise in NOISE_GRID:
                chol = np.linalg.cholesky(signal * gram + (noise + _JITTER) * np.eye(len(z)))
                alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
                evidence = -0.5 * z @ alpha - np.log(np.diag(chol)).sum()
                if best is None or evidence > best[0]:
                    best = (evidence, signal, noise, chol, alpha)
        _, self.signal, self.noise, self._chol, self._alpha = best
        return self

    def posterior(self, molecules: Sequence, full_cov: bool = False, features: np.ndarray | None = None):
        """Posterior of the latent function at ``molecules`` (original units).

        Args:
            molecules: Candidates (ignored when ``features`` is given).
            full_cov: Also return the joint covariance (``[N, N]``).
            features: Their fingerprints, when already computed.

        Returns:
            ``(mean, std)`` or ``(mean, cov)`` with ``full_cov``.

        Raises:
            DataError: the GP is not fitted.
        """
        if self._x is None:
            raise DataError("fit the GP before predicting")
        x = self.featurize(molecules) if features is None else features
        cross = self.signal * tanimoto(x, self._x)
        mean = self._offset + self._scale * (cross @ self._alpha)
        v = np.linalg.solve(self._chol, cross.T)
        if full_cov:
            cov = self.signal * tanimoto(x, x) - v.T @ v
            return mean, cov * self._scale ** 2
        var = np.clip(self.signal - (v * v).sum(0), 0.0, None)
        return mean, np.sqrt(var) * self._scale

    def predict(self, molecules: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std (the predictor contract of :mod:`molgen.predictors.base`).

        Args:
            molecules: RDKit molecules or SMILES.

        Returns:
            ``(mean, std)`` arrays ``[N]`` in the targets' units.
        """
        return self.posterior(molecules)

    @property
    def noise_variance(self) -> float:
        """The fitted observation-noise variance in target units."""
        return float(self.noise * self._scale ** 2)
