"""Optimisation in a VAE's latent space against a black-box oracle.

Two methods of one ask/tell strategy, :class:`LatentSearch`, which plugs into
the campaign engine (``molgen optimize --strategy latent-cmaes`` or
``latent-gradient``) and into the stand-alone :func:`optimize_latent`:

* ``"cmaes"``: CMA-ES (pycma) over ``z``, started at the best start object's
  latent; each candidate ``z`` is decoded greedily and scored. A search that
  finds nothing new for ``patience`` rounds restarts from the next-best start
  latent with a larger step size.
* ``"gradient"``: a property head (small MLP ensemble) is fitted on
  ``(z, score)`` pairs; the best latents climb its gradient (with a Gaussian
  prior term that keeps them where the decoder was trained), are decoded and
  scored, and the head is refitted on the new pairs each round.

The first proposal is the start set (the texts given, or decodings of latents
drawn from the prior), so its scores are counted like any other call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from pydantic import Field
from torch import nn

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError
from molgen.core.seeding import make_generator
from molgen.scoring.oracle import Oracle


class LatentSearchConfig(StrictModel):
    """Settings of :class:`LatentSearch` (``[strategy]`` with ``kind = "latent"``)."""

    kind: Literal["latent"] = "latent"
    method: Literal["cmaes", "gradient"] = "cmaes"
    start: str | None = Field(None, description="data set name or file of start objects (None: decode prior samples)")
    start_size: int = Field(64, gt=0, description="start objects taken (seeded subset) or prior latents decoded")
    sigma: float = Field(0.5, gt=0, description="CMA-ES step size, or the exploration noise of gradient ascent")
    ascent_steps: int = Field(10, gt=0, description="gradient steps between decodes")
    step_size: float = Field(0.1, gt=0, description="length of each (normalised) gradient step")
    prior_weight: float = Field(0.1, ge=0, description="weight of log N(z; 0, I) added to the head during ascent")
    patience: int = Field(20, gt=0, description="rounds without a new object before CMA-ES restarts / ascent stops")
    max_restarts: int = Field(10, ge=0, description="CMA-ES restarts before the search counts as exhausted")


class LatentSearch:
    """Campaign strategy: search a VAE's latent space (CMA-ES or gradient
    ascent through a learned property head).

    Args:
        model: A generator with ``encode``, ``decode``, ``prior_sample``,
            ``config.latent_dim`` and ``domain``
            (:class:`molgen.backbones.vae.SequenceVAE`).
        config: Strategy settings.
        start: Texts of the start set (None: decode ``config.start_size``
            latents drawn from the prior).
        seed: Seed of every random choice.

    Raises:
        MolgenError: the model has no latent space, or no start text fits
            the model's vocabulary and length.
    """

    name = "latent"

    def __init__(self, model, config: LatentSearchConfig | None = None, start: Sequence[str] | None = None, seed: int = 0):
        if not all(hasattr(model, attr) for attr in ("encode", "decode", "prior_sample")):
            raise MolgenError(
                f"latent-space search needs a VAE; the {getattr(model, 'name', type(model).__name__)!r} backbone has no latent space"
            )
        self.model = model.eval()
        self.config = config or LatentSearchConfig()
        self.name = f"latent-{self.config.method}"
        self.device = model.device
        self.seed = seed
        self.generator = make_generator(seed)
        self._start = self._usable(list(start)) if start is not None else None
        self.latents: list[np.ndarray] = []
        self.scores: list[float] = []
        self.seen: set[str] = set()
        self.start_z = np.zeros((0, model.config.latent_dim), dtype=np.float32)  # best first, once scored
        self.started = False
        self.restart = 0
        self.idle = 0
        self._es = None
        self._resume_at: tuple[np.ndarray, float] | None = None  # CMA-ES mean and step size from a checkpoint
        self._head = None
        self._pending: np.ndarray | None = None

    @property
    def domain(self):
        return self.model.domain

    @property
    def exhausted(self) -> bool:
        """True once the search has nothing new left to try (the engine stops)."""
        if self.config.method == "cmaes":
            return self.restart > self.config.max_restarts
        return self.idle > self.config.patience

    def _usable(self, texts: list[str]) -> list[str]:
        tokenizer, limit = self.domain.tokenizer, self.model.config.max_length

        def fits(text: str) -> bool:
            try:
                return len(tokenizer.encode(text, on_unknown="unk")) <= limit
            except MolgenError:  # text the tokenizer cannot split at all
                return False

        kept = [t for t in texts if fits(t)]
        if not kept:
            raise MolgenError(f"none of the {len(texts)} start texts fits the model (vocabulary, at most {limit} tokens)")
        return kept

    # -- ask ----------------------------------------------------------------
    def propose(self, n: int) -> list[str]:
        """The start set first; then ``n`` decoded latents per call."""
        with torch.no_grad():
            if not self.started:
                if self._start is None:
                    z = self.model.prior_sample(self.config.start_size, generator=make_generator(self.seed, self.device))
                    self._pending = z.float().cpu().numpy()
                    return self._decode(self._pending)
                mean, _ = self.model.encode(self.model.make_batch(self._start, on_unknown="unk"))
                self._pending = mean.float().cpu().numpy()
                return list(self._start)
            z = self._ask_cmaes(n) if self.config.method == "cmaes" else self._ask_gradient(n)
        self._pending = z.astype(np.float32)
        return self._decode(self._pending)

    def _decode(self, z: np.ndarray) -> list[str]:
        return self.model.decode(torch.as_tensor(z, dtype=torch.float32, device=self.device))

    def _ask_cmaes(self, n: int) -> np.ndarray:
        import cma

        if self._es is None:
            if self._resume_at is not None:  # continue a checkpointed search where it was
                x0, sigma0 = self._resume_at
                self._resume_at = None
            else:
                x0 = self.start_z[self.restart % len(self.start_z)].astype(float)
                sigma0 = self.config.sigma * 2 ** min(self.restart, 2)
            # Decoding is piecewise constant in z, so generations often see flat
            # fitness; stopping is left to the stall count and the budget.
            options = {"popsize": n, "seed": self.seed + 1 + self.restart, "verbose": -9, "tolflatfitness": 10**9,
                       "tolfun": 0, "tolfunhist": 0, "tolx": 0, "tolstagnation": 10**9}
            self._es = cma.CMAEvolutionStrategy(x0, sigma0, options)
        return np.asarray(self._es.ask())

    def _ask_gradient(self, n: int) -> np.ndarray:
        c = self.config
        z_seen = np.asarray(self.latents, dtype=np.float32)
        y_seen = np.asarray(self.scores)
        # Warm start: after the first fit, a few epochs per round absorb the new pairs.
        with torch.enable_grad():
            self._head = _fit_head(z_seen, y_seen, self.generator, self._head, epochs=150 if self._head is None else 40)
        order = np.argsort(-y_seen)[:n]
        z = torch.as_tensor(z_seen[order])
        z = z + c.sigma * 0.2 * torch.randn(z.shape, generator=self.generator)  # distinct starting points
        for _ in range(c.ascent_steps):
            with torch.enable_grad():
                z.requires_grad_(True)
                value = self._head(z).mean(0) - 0.5 * c.prior_weight * (z**2).sum(-1)
                (grad,) = torch.autograd.grad(value.sum(), z)
            z = z.detach() + c.step_size * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        if self.idle:  # the last round decoded only known objects: explore around them
            z = z + c.sigma * min(self.idle, 8) * torch.randn(z.shape, generator=self.generator)
        return z.numpy()

    # -- tell ---------------------------------------------------------------
    def update(self, texts: Sequence[str], keys: Sequence[str | None], rewards: Sequence[float]) -> dict[str, float]:
        """Learn from the scores of the last proposal.

        Args:
            texts: The texts returned by :meth:`propose`.
            keys: Canonical keys (None for invalid texts).
            rewards: Scores (NaN for invalid or unscored objects).

        Returns:
            ``{"new", "restart"}``: objects not seen before, CMA-ES restarts so far.
        """
        if self._pending is None or len(texts) != len(self._pending):
            raise MolgenError("update() must follow propose() with its texts")
        z, self._pending = self._pending, None
        rewards = np.asarray(rewards, dtype=float)
        finite = np.isfinite(rewards)
        # One (z, score) pair per object, from the first latent that decoded to
        # it: repeats add no information about the score and, kept, made the
        # head's training set grow by a full batch every step.
        first = np.zeros(len(keys), dtype=bool)
        new: set[str] = set()
        for i, key in enumerate(keys):
            if key is not None and key not in self.seen and key not in new:
                new.add(key)
                first[i] = True
        self.seen |= new
        keep = finite & first
        self.latents.extend(z[keep])
        self.scores.extend(rewards[keep].tolist())
        if not self.started:
            if not finite.any():
                raise MolgenError("no object of the start set could be scored")
            order = np.argsort(-np.where(finite, rewards, -np.inf))
            self.start_z = z[order[finite[order]]]
            self.started = True
            return {"new": float(len(new)), "restart": 0.0}
        self.idle = 0 if new else self.idle + 1
        if self.config.method == "cmaes":
            # Invalid or unscored decodes rank below every scored one.
            floor = np.nanmin(rewards) - 1.0 if finite.any() else -1.0
            self._es.tell(list(z.astype(float)), list(-np.where(finite, rewards, floor)))
            if self.idle > self.config.patience or self._es.stop():
                self._es, self.idle = None, 0
                self.restart += 1
        return {"new": float(len(new)), "restart": float(self.restart)}

    # -- checkpoints --------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(tensors, json)`` for :meth:`load_state`. CMA-ES keeps its mean
        and step size (its covariance restarts from the identity); the
        property head is refitted from the stored pairs."""
        dim = self.model.config.latent_dim
        tensors = {
            "latents": torch.as_tensor(np.asarray(self.latents, dtype=np.float32).reshape(-1, dim)),
            "scores": torch.as_tensor(np.asarray(self.scores, dtype=np.float64)),
            "start_z": torch.as_tensor(self.start_z),
            "rng": self.generator.get_state(),
        }
        data: dict[str, Any] = {"started": self.started, "restart": self.restart, "idle": self.idle, "seen": sorted(self.seen)}
        at = (self._es.mean, self._es.sigma) if self._es is not None else self._resume_at
        if at is not None:
            tensors["cma.mean"] = torch.as_tensor(np.asarray(at[0], dtype=np.float64))
            data["cma_sigma"] = float(at[1])
        return tensors, data

    def load_state(self, tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
        """Restore what :meth:`state` saved."""
        self.latents = list(tensors["latents"].numpy())
        self.scores = tensors["scores"].tolist()
        self.start_z = tensors["start_z"].numpy()
        self.generator.set_state(tensors["rng"].cpu())
        self.started, self.restart, self.idle = bool(data["started"]), int(data["restart"]), int(data["idle"])
        self.seen = set(data["seen"])
        self._es, self._head = None, None
        if "cma.mean" in tensors:
            self._resume_at = (tensors["cma.mean"].numpy(), float(data["cma_sigma"]))


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
    """Maximise an oracle over a VAE's latent space (without a run directory;
    ``molgen optimize --strategy latent-cmaes`` adds the store and resume).

    Args:
        model: A VAE (see :class:`LatentSearch`).
        oracle: Counted objective; its budget bounds the search (required).
        start: Texts of the start set (scored first, counted).
        method: ``"cmaes"`` (derivative-free) or ``"gradient"`` (ascent
            through a property head trained on ``z``).
        max_rounds: Most generations / ascent rounds.
        population: CMA-ES population, or latents climbed per round.
        sigma, ascent_steps, step_size, prior_weight, patience, max_restarts:
            See :class:`LatentSearchConfig`.
        top_k: Best objects returned.
        seed: Seed of every random choice.

    Returns:
        The result, with oracle calls counted.

    Raises:
        MolgenError: no budget, an empty start set, no start object valid,
            or an unknown method.
    """
    if oracle.budget is None:
        raise MolgenError("latent optimisation needs an oracle with a budget")
    if not start:
        raise MolgenError("the start set is empty")
    if method not in ("cmaes", "gradient"):
        raise MolgenError(f"unknown latent optimisation method {method!r}; use cmaes or gradient")
    config = LatentSearchConfig(method=method, sigma=sigma, ascent_steps=ascent_steps, step_size=step_size,
                                prior_weight=prior_weight, patience=patience, max_restarts=max_restarts)
    search = LatentSearch(model, config, start=start, seed=seed)
    domain = model.domain
    found: dict[str, tuple[str, float]] = {}
    history: list[tuple[int, float]] = []
    decoded = valid = 0
    start_best = float("nan")
    rounds = -1  # round 0 scores the start set
    while rounds < max_rounds and oracle.remaining > 0 and not search.exhausted:
        texts = search.propose(population)
        objs = [domain.try_parse(t) for t in texts]
        keys = [None if o is None else domain.key(o) for o in objs]
        scores = oracle.score(objs)
        if rounds >= 0:
            decoded += len(objs)
            valid += sum(o is not None for o in objs)
        elif not np.isfinite(scores).any():
            raise MolgenError("no object of the start set could be scored")
        else:
            start_best = float(np.nanmax(scores))
        search.update(texts, keys, scores)
        for obj, key, score in zip(objs, keys, scores):
            if key is not None and np.isfinite(score):
                found.setdefault(key, (domain.format(obj), float(score)))
        history.append((oracle.calls, max(s for _, s in found.values())))
        rounds += 1
    best = sorted(found.values(), key=lambda item: -item[1])[:top_k]
    return LatentOptimizationResult(best=best, start_best=start_best, oracle_calls=oracle.calls,
                                    history=history, valid_fraction=valid / max(decoded, 1))


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
