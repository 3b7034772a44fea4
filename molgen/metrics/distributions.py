"""Distances between distributions: cosine similarity of count vectors,
Wasserstein-1 of property values, and GuacaMol's KL divergences."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.stats import entropy, gaussian_kde, wasserstein_distance

#: GuacaMol's smoothing constant, added to both densities before the KL divergence.
KL_EPSILON = 1e-10
KDE_POINTS = 1000
HISTOGRAM_BINS = 10


def count_cosine_similarity(reference: Counter, generated: Counter) -> float:
    """Cosine similarity of two count vectors over the union of their keys.

    Args:
        reference: Counts of fragments/scaffolds in the reference set.
        generated: Counts in the generated set.

    Returns:
        Similarity in [0, 1]; NaN when either set is empty.
    """
    if not reference or not generated:
        return float("nan")
    keys = sorted(set(reference) | set(generated))
    ref_vec = np.array([reference.get(k, 0) for k in keys], dtype=np.float64)
    gen_vec = np.array([generated.get(k, 0) for k in keys], dtype=np.float64)
    return float(ref_vec @ gen_vec / (np.linalg.norm(ref_vec) * np.linalg.norm(gen_vec)))


def weighted_wasserstein(
    reference: np.ndarray, generated: np.ndarray, reference_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
) -> float:
    """Wasserstein-1 distance between two weighted samples of a property."""
    return float(wasserstein_distance(reference, generated, reference_weights, generated_weights))


def continuous_kl(reference: np.ndarray, generated: np.ndarray) -> float:
    """KL(reference || generated) of Gaussian kernel density estimates on a 1,000-point grid (GuacaMol).

    Raises:
        ValueError: fewer than 2 distinct values on a side (no density to estimate).
    """
    values = np.concatenate([reference, generated])
    grid = np.linspace(values.min(), values.max(), num=KDE_POINTS)
    try:
        p = gaussian_kde(reference)(grid) + KL_EPSILON
        q = gaussian_kde(generated)(grid) + KL_EPSILON
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError(f"cannot estimate a density: {exc}") from None
    return float(entropy(p, q))


def discrete_kl(reference: np.ndarray, generated: np.ndarray) -> float:
    """KL(reference || generated) of 10-bin histograms on the reference's bins (GuacaMol)."""
    p, bins = np.histogram(reference, bins=HISTOGRAM_BINS, density=True)
    counts, _ = np.histogram(generated, bins=bins)
    # numpy's density=True divides 0 by 0 when no generated value falls in the
    # reference's range; an all-zero density is what GuacaMol intends there.
    q = counts / (counts.sum() * np.diff(bins)) if counts.sum() else np.zeros_like(p)
    return float(entropy(p + KL_EPSILON, q + KL_EPSILON))
