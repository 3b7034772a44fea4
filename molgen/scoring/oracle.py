"""An objective behind a budget: calls are counted per unique object (by the
domain's canonical key, as the PMO benchmark counts them) and cached."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from molgen.core.errors import MolgenError
from molgen.scoring.objective import Objective


class BudgetExhausted(MolgenError):
    """The oracle budget is spent."""


class Oracle:
    """Counted, cached access to an objective.

    Args:
        objective: What to evaluate.
        domain: Gives the canonical key of an object (cache and count).
        budget: Most unique objects evaluated (None: unlimited).
        listener: Called as ``listener(keys, objs, table)`` with each batch
            of fresh evaluations and their :class:`ScoreTable`, before the
            scores are returned (a campaign stores them there).
        key: ``object -> canonical key`` (default ``domain.key``; crystals
            use a :class:`~molgen.domains.crystal.matching.StructureIndex`,
            since their domain key, the formula, does not tell polymorphs apart).

    Attributes:
        calls: Unique objects evaluated so far.
        history: ``(key, score)`` of each evaluation in order (score NaN on failure).
    """

    def __init__(self, objective: Objective, domain, budget: int | None = None, listener: Callable | None = None,
                 key: Callable[[Any], str] | None = None):
        self.objective = objective
        self.domain = domain
        self.key = key or domain.key
        self.budget = budget
        self.listener = listener
        self.calls = 0
        self.cache: dict[str, float] = {}
        self.history: list[tuple[str, float]] = []

    @property
    def remaining(self) -> int | None:
        """Evaluations left (None: unlimited)."""
        return None if self.budget is None else self.budget - self.calls

    def score(self, objs: Sequence[Any]) -> np.ndarray:
        """Scores of ``objs``: NaN for invalid objects and failures.

        Objects seen before come from the cache and cost nothing. When the
        budget runs out part-way, the objects beyond it stay NaN and
        :class:`BudgetExhausted` is raised only if nothing could be scored.

        Returns:
            ``[N]`` scores.
        """
        scores = np.full(len(objs), np.nan)
        pending: dict[str, list[int]] = {}
        pending_objs: list[Any] = []
        for i, obj in enumerate(objs):
            if obj is None:
                continue
            key = self.key(obj)
            if key in self.cache:
                scores[i] = self.cache[key]
            elif key in pending:
                pending[key].append(i)
            elif self.remaining is None or len(pending) < self.remaining:
                pending[key] = [i]
                pending_objs.append(obj)
        if not pending and self.remaining == 0 and np.isnan(scores).all() and any(o is not None for o in objs):
            raise BudgetExhausted(f"oracle budget of {self.budget} evaluations is spent")
        if pending:
            table = self.objective(pending_objs)
            if self.listener is not None:
                self.listener(list(pending), pending_objs, table)
            totals = table.total
            for (key, rows), value in zip(pending.items(), totals):
                self.cache[key] = float(value)
                self.history.append((key, float(value)))
                scores[rows] = value
            self.calls += len(pending)
        return scores

    def restore(self, evaluations: Iterable[tuple[str, float]]) -> None:
        """Replay earlier evaluations ``(key, score)`` in call order (a resumed
        run): they fill the cache and the history and count against the budget."""
        for key, value in evaluations:
            if key in self.cache:
                continue
            self.cache[key] = float(value)
            self.history.append((key, float(value)))
            self.calls += 1

    def top_auc(self, top_n: int = 10, finish: bool = True, freq_log: int = 100) -> float:
        """PMO's area under the top-``top_n`` mean curve (Gao et al. 2022).

        The curve is sampled every ``freq_log`` calls (trapezoids from 0 at
        call 0) and normalised by the budget; with ``finish`` a run that
        stopped early is extended flat at its last value. Failed evaluations
        count as 0 here, as in PMO.

        Returns:
            The AUC in [0, 1] (for scores in [0, 1]).

        Raises:
            MolgenError: the oracle has no budget.
        """
        if self.budget is None:
            raise MolgenError("top_auc needs an oracle budget")
        scores = np.nan_to_num(np.array([s for _, s in self.history], dtype=float), nan=0.0)
        n = len(scores)

        def top_mean(count: int) -> float:
            if count == 0:
                return 0.0
            part = np.sort(scores[:count])[::-1][:top_n]
            return float(part.mean())

        area, previous, called = 0.0, 0.0, 0
        for idx in range(freq_log, min(n, self.budget), freq_log):
            now = top_mean(idx)
            area += freq_log * (now + previous) / 2
            previous, called = now, idx
        now = top_mean(n)
        area += (n - called) * (now + previous) / 2
        if finish and n < self.budget:
            area += (self.budget - n) * now
        return area / self.budget

    def summary(self) -> dict[str, float]:
        """Calls, top-1/10/100 means and PMO AUCs (with a budget)."""
        scores = np.sort(np.nan_to_num(np.array([s for _, s in self.history], dtype=float), nan=0.0))[::-1]
        out: dict[str, float] = {"calls": float(self.calls)}
        for k in (1, 10, 100):
            out[f"top{k}"] = float(scores[:k].mean()) if len(scores) else float("nan")
            if self.budget is not None:
                out[f"auc_top{k}"] = self.top_auc(k)
        return out

    def best(self, k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` best ``(key, score)`` evaluated so far."""
        finite = [(key, s) for key, s in self.history if np.isfinite(s)]
        return sorted(finite, key=lambda item: -item[1])[:k]
