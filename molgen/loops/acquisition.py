"""Acquisition functions of batched active learning: which library members
to send to the expensive oracle next, from a surrogate's mean and std
(higher is better; minimisation flips the sign before)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

ACQUISITIONS = ("random", "greedy", "ucb", "ei", "thompson")


def acquisition_scores(
    kind: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator, beta: float = 2.0, xi: float = 0.01
) -> np.ndarray:
    """Utility of each candidate; the batch is the ``k`` highest.

    Args:
        kind: ``random``, ``greedy`` (mean), ``ucb`` (mean + beta * std),
            ``ei`` (expected improvement over ``best + xi``) or ``thompson``
            (one draw from N(mean, std^2) per candidate).
        mean: Predicted means ``[N]``.
        std: Predicted standard deviations ``[N]``.
        best: Best value observed so far.
        rng: Randomness of ``random`` and ``thompson``.
        beta: UCB exploration weight.
        xi: EI margin.

    Returns:
        ``[N]`` utilities (NaN predictions get -inf).

    Raises:
        ValueError: unknown ``kind``.
    """
    mean = np.asarray(mean, dtype=float)
    std = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0).clip(min=0.0)
    if kind == "random":
        utility = rng.random(len(mean))
    elif kind == "greedy":
        utility = mean.copy()
    elif kind == "ucb":
        utility = mean + beta * std
    elif kind == "ei":
        gain = mean - best - xi
        safe = np.where(std > 0, std, 1.0)
        z = gain / safe
        utility = np.where(std > 0, gain * norm.cdf(z) + std * norm.pdf(z), np.maximum(gain, 0.0))
    elif kind == "thompson":
        utility = mean + std * rng.standard_normal(len(mean))
    else:
        raise ValueError(f"unknown acquisition {kind!r}; use one of {', '.join(ACQUISITIONS)}")
    return np.where(np.isnan(utility), -np.inf, utility)
