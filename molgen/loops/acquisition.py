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


def select_batch(
    k: int,
    mean: np.ndarray,
    cov: np.ndarray | None,
    rng: np.random.Generator,
    kind: str = "ucb",
    beta: float = 2.0,
    noise: float = 0.0,
    similarity: np.ndarray | None = None,
    max_similarity: float = 1.0,
) -> list[tuple[int, dict[str, float]]]:
    """Choose a batch of ``k`` from a pool, one pick at a time, so the batch
    does not spend the lab's measurements on near-duplicates.

    Two mechanisms keep it diverse: with a joint posterior ``cov``, each pick
    is treated as observed (with ``noise``) and the covariance is conditioned
    on it, which lowers the std of everything correlated with it (GP-BUCB,
    Desautels et al. 2014; the mean is unchanged, as the kriging believer
    would keep it); and a pick is refused while another candidate exists whose
    similarity to every earlier pick is at most ``max_similarity``.

    Args:
        k: Batch size.
        mean: Predicted values ``[N]`` (higher is better; a cheap score, or zeros, before a surrogate exists).
        cov: Joint posterior covariance ``[N, N]``, or None (std 0).
        rng: Randomness of ``random``, ``thompson`` and tie-breaks.
        kind: ``ucb``, ``thompson`` (a fresh draw from the marginals per pick), ``greedy`` or ``random``.
        beta: UCB exploration weight.
        noise: Observation-noise variance of a hallucinated pick.
        similarity: Pairwise similarity of the pool ``[N, N]``, or None.
        max_similarity: The diversity cap (1: off).

    Returns:
        ``(pool index, {"utility", "mean", "std", "max_similarity"})`` per pick, in pick order.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in ("ucb", "thompson", "greedy", "random"):
        raise ValueError(f"unknown batch acquisition {kind!r}; use ucb, thompson, greedy or random")
    mean = np.nan_to_num(np.asarray(mean, dtype=float), nan=-np.inf)
    n = len(mean)
    cov = None if cov is None else np.array(cov, dtype=float, copy=True)
    jitter = rng.random(n) * 1e-9  # seeded tie-break: equal utilities do not fall back to pool order
    available = np.ones(n, dtype=bool)
    closest = np.zeros(n)  # highest similarity to a pick so far
    picks: list[tuple[int, dict[str, float]]] = []
    for _ in range(min(k, n)):
        std = np.zeros(n) if cov is None else np.sqrt(np.clip(np.diag(cov), 0.0, None))
        if kind == "ucb":
            utility = mean + beta * std
        elif kind == "thompson":
            utility = mean + std * rng.standard_normal(n)
        elif kind == "greedy":
            utility = mean.copy()
        else:
            utility = rng.random(n)
        utility = np.where(available, utility + jitter, -np.inf)
        diverse = available & (closest <= max_similarity)
        if diverse.any():
            utility = np.where(diverse, utility, -np.inf)
        j = int(np.argmax(utility))
        if not available[j]:
            break
        picks.append((j, {"utility": float(utility[j] - jitter[j]), "mean": float(mean[j]), "std": float(std[j]),
                          "max_similarity": float(closest[j])}))
        available[j] = False
        if similarity is not None:
            np.maximum(closest, similarity[j], out=closest)
        if cov is not None:
            column = cov[:, j].copy()
            cov -= np.outer(column, column) / (column[j] + noise + 1e-12)
    return picks
