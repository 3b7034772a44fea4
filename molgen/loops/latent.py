"""Optimisation in a VAE's latent space against a black-box oracle.

Two strategies, both counting every unique decoded object the oracle scores:

* ``"cmaes"``: CMA-ES (pycma) over ``z``, started at the best start object's
  latent; each candidate ``z`` is decoded greedily and scored.
* ``"gradient"``: a property head (small MLP ensemble) is fitted on
  ``(z, score)`` pairs; the best latents climb its gradient (with a Gaussian
  prior term that keeps them where the decoder was trained), are decoded and
  scored, and the head is refitted on the new pairs each round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from molgen.core.errors import MolgenError
from molgen.scoring.oracle import Oracle


@dataclass
class LatentOptimizationResult:
    """Outcome of :func:`optimize_latent`.

    Attributes:
        best: ``(text, score)`` of the best objects found, best first
            (start objects included).
        start_best: Best score within the start set.
        oracle_calls: Unique objects scored (start set included).
        history: Best score so far after each round, with the calls used:
            ``(oracle_calls, best_score)``.
        valid_fraction: Fraction of decoded latents that gave a valid object.
    """

    best: list[tuple[str, float]]
    start_best: float
    oracle_calls: int
    history: list[tuple[int, float]] = field(default_factory=list)
    valid_fraction: float = float("nan")


class _Tracker:
    """Decodes latents, scores them through the oracle and remembers pairs."""

    def __init__(self, model, oracle: Oracle, patience: int):
        self.model = model
        self.patience = patience
        self._last_calls = -1
        self._idle_rounds = 0
        self.oracle = oracle
        self.domain = model.domain
        self.latents: list[np.ndarray] = []
        self.scores: list[float] = []
        self.texts: dict[str, tuple[str, float]] = {}
        self.decoded = 0
        self.valid = 0
        self.history: list[tuple[int, float]] = []

    def record(self, texts: Sequence[str], z: np.ndarray | None) -> np.ndarray:
        objs = [self.domain.try_parse(t) for t in texts]
        scores = self.oracle.score(objs)
        for i, (obj, score) in enumerate(zip(objs, scores)):
            if z is not None:
                self.decoded += 1
                self.valid += obj is not None
            if obj is None:
                continue
            if np.isfinite(score):
                key = self.domain.key(obj)
                self.texts.setdefault(key, (self.domain.format(obj), float(score)))
            if z is not None and np.isfinite(score):
                self.latents.append(z[i])
                self.scores.append(float(score))
        return scores

    def best_score(self) -> float:
        return max((s for _, s in self.texts.values()), default=float("nan"))

    def checkpoint(self) -> None:
        self.history.append((self.oracle.calls, self.best_score()))

    def budget_spent(self) -> bool:
        return self.oracle.remaining is not None and self.oracle.remaining <= 0

    def stalled(self) -> bool:
        """True once ``patience`` rounds in a row scored nothing new (call once per round)."""
        calls = self.oracle.calls
        if calls != self._last_calls:
            self._last_calls, self._idle_rounds = calls, 0
        else:
            self._idle_rounds += 1
        return self._idle_rounds > self.patience

    def reset_stall(self) -> None:
        self._last_calls, self._idle_rounds = self.oracle.calls, 0


def optimize_latent(
    model,
    oracle: Oracle,
    start: Sequence[str],
    *,
    method: Literal["cmaes", "gradient"] = "cmaes",
    max_rounds: int = 100,
    population: int = 32,
    sigma: float = 0.5,
    ascent_steps: int = 10,
    step_size: float = 0.1,
    prior_weight: float = 0.1,
    top_k: int = 10,
    patience: int = 20,
    max_restarts: int = 10,
    seed: int = 0,
) -> LatentOptimizationResult:
    """Maximise an oracle over a VAE's latent space.

    Args:
        model: A generator with ``encode(texts) -> (mean, log_var)``,
            ``decode(z) -> texts``, ``config.latent_dim`` and ``domain``
            (:class:`molgen.backbones.vae.SequenceVAE`).
        oracle: Counted objective; its budget bounds the search (required).
        start: Texts of the start set (scored first, counted).
        method: ``"cmaes"`` (derivative-free) or ``"gradient"`` (ascent
            through a property head trained on ``z``).
        max_rounds: Most generations / ascent rounds.
        population: CMA-ES population, or latents climbed per round.
        sigma: CMA-ES initial step size (latent units), or the noise added
            to restart a gradient round that found nothing new.
        ascent_steps: Gradient steps between decodes.
        step_size: Gradient step length (on the normalised gradient).
        prior_weight: Weight of ``log N(z; 0, I)`` added to the head's
            prediction during ascent.
        top_k: Best objects returned.
        patience: Rounds in a row that decode nothing new before the search
            counts as stalled: CMA-ES then restarts from the next start
            object with a larger step size; gradient ascent stops.
        max_restarts: Most CMA-ES restarts.
        seed: Seed of every random choice.

    Returns:
        The result, with oracle calls counted.

    Raises:
        MolgenError: no budget, an empty start set, or no start object valid.
    """
    if oracle.budget is None:
        raise MolgenError("latent optimisation needs an oracle with a budget")
    if not start:
        raise MolgenError("the start set is empty")
    tracker = _Tracker(model, oracle, patience)
    start_scores = tracker.record(list(start), None)
    if not np.isfinite(start_scores).any():
        raise MolgenError("no object of the start set could be scored")
    start_best = float(np.nanmax(start_scores))
    with torch.no_grad():
        mean, _ = model.encode(list(start))
    start_z = mean.cpu().numpy()
    finite = np.isfinite(start_scores)
    tracker.latents.extend(start_z[finite])
    tracker.scores.extend(start_scores[finite].tolist())
    tracker.checkpoint()
    if method == "cmaes":
        order = np.argsort(-np.where(np.isfinite(start_scores), start_scores, -np.inf))
        _cmaes(model, tracker, start_z[order[finite[order]]], max_rounds, population, sigma, seed, max_restarts)
    elif method == "gradient":
        _gradient(model, tracker, max_rounds, population, ascent_steps, step_size, prior_weight, sigma, seed)
    else:
        raise MolgenError(f"unknown latent optimisation method {method!r}; use cmaes or gradient")
    best = sorted(tracker.texts.values(), key=lambda item: -item[1])[:top_k]
    return LatentOptimizationResult(
        best=best,
        start_best=start_best,
        oracle_calls=oracle.calls,
        history=tracker.history,
        valid_fraction=tracker.valid / max(tracker.decoded, 1),
    )


def _decode(model, z: np.ndarray) -> list[str]:
    return model.decode(torch.as_tensor(z, dtype=torch.float32, device=model.device))


def _cmaes(model, tracker: _Tracker, starts: np.ndarray, max_rounds: int, population: int, sigma: float, seed: int, max_restarts: int) -> None:
    """CMA-ES with restarts: a search that stalls (decodes only known or
    invalid objects for ``patience`` generations) restarts from the next start
    latent with a larger step size (x2, x4 at most), until the budget,
    ``max_rounds`` generations or ``max_restarts`` restarts are used."""
    import cma

    rounds, restart = 0, 0
    while rounds < max_rounds and restart <= max_restarts and not tracker.budget_spent():
        # Decoding is piecewise constant in z, so many generations see flat
        # fitness; stopping is left to the stall test and the budget.
        options = {
            "popsize": population, "seed": seed + 1 + restart, "verbose": -9, "maxiter": max_rounds - rounds,
            "tolflatfitness": max_rounds, "tolfun": 0, "tolfunhist": 0, "tolx": 0, "tolstagnation": max_rounds,
        }
        x0 = starts[restart % len(starts)].astype(float)
        es = cma.CMAEvolutionStrategy(x0, sigma * 2 ** min(restart, 2), options)
        tracker.reset_stall()
        while not es.stop() and rounds < max_rounds and not tracker.budget_spent():
            candidates = np.asarray(es.ask())
            scores = tracker.record(_decode(model, candidates), candidates)
            # Invalid or unscored decodes rank below every scored one.
            floor = np.nanmin(scores) - 1.0 if np.isfinite(scores).any() else -1.0
            es.tell(list(candidates), list(-np.where(np.isfinite(scores), scores, floor)))
            tracker.checkpoint()
            rounds += 1
            if tracker.stalled():
                break
        restart += 1


class _PropertyHead(nn.Module):
    """Ensemble of small MLPs ``z -> score``, evaluated as one batched
    matrix product per layer; ``forward`` returns every member's prediction."""

    def __init__(self, latent_dim: int, members: int = 4, hidden: int = 128):
        super().__init__()
        sizes = [latent_dim, hidden, hidden, 1]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(members, a, b) / a**0.5) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, b)) for b in sizes[1:])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``[N, D]`` (shared) or ``[M, N, D]`` (one batch per member) -> ``[M, N]``."""
        x = z if z.ndim == 3 else z.expand(len(self.weights[0]), *z.shape)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = torch.nn.functional.silu(x)
        return x.squeeze(-1)


def _fit_head(
    z: np.ndarray, y: np.ndarray, generator: torch.Generator, head: _PropertyHead | None = None, epochs: int = 150
) -> _PropertyHead:
    """Fit (or, given ``head``, keep fitting) the ensemble on standardised scores."""
    if head is None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        head = _PropertyHead(z.shape[1])
    head.train()
    zt = torch.as_tensor(z, dtype=torch.float32)
    yt = torch.as_tensor((y - y.mean()) / (y.std() + 1e-6), dtype=torch.float32)
    # Each member sees its own bootstrap resample, so the ensemble disagrees where data is thin.
    idx = torch.randint(0, len(yt), (len(head.weights[0]), len(yt)), generator=generator)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        loss = ((head(zt[idx]) - yt[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return head.eval()


def _gradient(model, tracker, max_rounds, population, ascent_steps, step_size, prior_weight, sigma, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    tracker.reset_stall()
    explore = 0  # rounds in a row that found nothing new: widens the exploration noise
    head = None
    for _ in range(max_rounds):
        if tracker.budget_spent():
            break
        z_seen = np.asarray(tracker.latents, dtype=np.float32)
        y_seen = np.asarray(tracker.scores)
        # Warm start: after the first fit, a few epochs per round absorb the new pairs.
        head = _fit_head(z_seen, y_seen, generator, head, epochs=150 if head is None else 40)
        order = np.argsort(-y_seen)[:population]
        z = torch.as_tensor(z_seen[order])
        z = z + sigma * 0.2 * torch.randn(z.shape, generator=generator)  # distinct starting points
        calls_before = tracker.oracle.calls
        for _ in range(ascent_steps):
            z.requires_grad_(True)
            value = head(z).mean(0) - 0.5 * prior_weight * (z**2).sum(-1)
            (grad,) = torch.autograd.grad(value.sum(), z)
            with torch.no_grad():
                z = z + step_size * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        z_np = z.detach().numpy()
        tracker.record(_decode(model, z_np), z_np)
        if tracker.oracle.calls == calls_before:  # converged onto known objects: explore around them
            explore += 1
            noisy = z_np + sigma * min(explore, 8) * np.asarray(torch.randn(z_np.shape, generator=generator))
            tracker.record(_decode(model, noisy), noisy)
        else:
            explore = 0
        tracker.checkpoint()
        if tracker.stalled():
            break
