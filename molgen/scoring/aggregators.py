"""Combining per-component desirabilities into one score, and Pareto ranks
for multi-objective selection. NaN anywhere in a row gives NaN."""

from __future__ import annotations

import numpy as np


def weighted_arithmetic_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum(w x) / sum(w)`` per row.

    Args:
        values: ``[N, C]`` desirabilities.
        weights: ``[C]`` positive weights.

    Returns:
        ``[N]``.
    """
    return values @ weights / weights.sum()


def weighted_geometric_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``prod(x^w) ^ (1 / sum(w))`` per row (0 when any term is 0).

    Args:
        values: ``[N, C]`` non-negative desirabilities.
        weights: ``[C]`` positive weights.

    Returns:
        ``[N]``.
    """
    with np.errstate(divide="ignore"):
        logs = np.log(np.clip(values, 0.0, None))
    return np.exp(logs @ weights / weights.sum())


AGGREGATORS = {"arithmetic": weighted_arithmetic_mean, "geometric": weighted_geometric_mean}


def pareto_ranks(values: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank of each row, all columns maximised.

    Rank 0 is the Pareto front; rank k rows are dominated only by rows of
    rank < k. Rows containing NaN get rank -1 (unranked).

    Args:
        values: ``[N, C]`` objective values.

    Returns:
        ``[N]`` integer ranks.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    ranks = np.full(n, -1, dtype=int)
    valid = ~np.isnan(values).any(axis=1)
    idx = np.flatnonzero(valid)
    x = values[idx]
    # dominates[i, j]: row i is at least as good everywhere and better somewhere.
    geq = (x[:, None, :] >= x[None, :, :]).all(-1)
    gt = (x[:, None, :] > x[None, :, :]).any(-1)
    dominated_by = (geq & gt).T  # [j, i]: j is dominated by i
    remaining = np.ones(len(idx), dtype=bool)
    rank = 0
    while remaining.any():
        counts = (dominated_by[:, remaining]).sum(1)
        front = remaining & (counts == 0)
        ranks[idx[front]] = rank
        remaining &= ~front
        rank += 1
    return ranks
