"""The optimisation loop (``molgen optimize``): propose, score under a
budget, shape rewards, update, store, checkpoint, repeat.

A strategy proposes texts and learns from rewards; the loop owns the oracle
(cache and PMO budget accounting), the diversity filter, the PMO progress log
every ``log_every`` calls and the final summary and exports. The run
directory (store, checkpoints, lock, atomic files) is the engine's
(:mod:`molgen.loops.engine`).

Run directory (besides the engine's candidates.sqlite, checkpoints and summary.json)::

    progress.csv           calls, top-1/10/100 means and top-10 AUC so far
    top100.csv, top100.sdf the best candidates (SDF for molecules)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.loops.diversity import DiversityFilterConfig, ScaffoldDiversityFilter
from molgen.loops.engine import RunDirectory
from molgen.loops.store import CandidateStore
from molgen.scoring.oracle import Oracle

PROGRESS_NAME = "progress.csv"


class Strategy(Protocol):
    """What the engine needs from a strategy."""

    name: str
    domain: Any

    def propose(self, n: int) -> list[str]: ...

    def update(self, texts: Sequence[str], keys: Sequence[str | None], rewards: Sequence[float]) -> dict[str, float]: ...

    def state(self) -> tuple[dict, dict]: ...

    def load_state(self, tensors: dict, data: dict) -> None: ...

    # Optional: ``exhausted`` (bool attribute or property) ends the campaign
    # when the strategy has nothing new left to try; ``forget(keys)`` is
    # called with the molecules of scaffolds the diversity filter has just
    # penalised (Augmented Memory's selective memory purge).


class CampaignConfig(StrictModel):
    """Settings of the engine (the strategy has its own)."""

    budget: int = Field(gt=0, description="oracle calls: unique valid objects scored")
    batch_size: int = Field(64, gt=0, description="proposals per step")
    log_every: int = Field(100, gt=0, description="calls between rows of progress.csv")
    checkpoint_every: int = Field(5, gt=0, description="steps between checkpoints")
    max_idle_steps: int = Field(50, gt=0, description="stop after this many steps without a new object")
    converged_patience: int | None = Field(
        None, gt=0, description="PMO's early stop: end when the top-100 scores stay unchanged for this many steps "
        "(checked once converged_after calls are spent; None: off)")
    converged_after: int = Field(1000, ge=0, description="calls before the convergence check starts")
    export_top: int = Field(100, ge=0, description="best candidates exported at the end (0: none)")
    diversity: DiversityFilterConfig = DiversityFilterConfig()


@dataclass
class CampaignResult:
    """What a campaign did."""

    out_dir: Path
    steps: int
    calls: int
    budget: int
    seconds: float
    stop_reason: str
    summary: dict[str, Any] = field(default_factory=dict)


class Campaign:
    """Runs a strategy against an objective under a budget.

    Args:
        strategy: Proposes and learns (e.g. :class:`~molgen.loops.reinforce.PriorRegularizedRL`).
        objective: A :class:`~molgen.scoring.objective.Objective`.
        out_dir: Run directory.
        config: Engine settings.
        progress: Show a progress bar.
    """

    def __init__(self, strategy: Strategy, objective, out_dir: str | Path, config: CampaignConfig, progress: bool = False):
        self.strategy = strategy
        self.domain = strategy.domain
        self.objective = objective
        self.out_dir = Path(out_dir)
        self.config = config
        self.progress = progress
        self.diversity = ScaffoldDiversityFilter(config.diversity)
        self.step = 0
        self._texts: dict[str, str] = {}
        self.clipped = 0
        self.clip_examples: list[float] = []

    # -- the loop -----------------------------------------------------------
    def run(self, resume: bool = False) -> CampaignResult:
        """Run until the budget is spent (or proposals stop being new).

        Args:
            resume: Continue the campaign stored in ``out_dir``.

        Returns:
            The result; ``summary.json`` and the exports are written too.

        Raises:
            MolgenError: ``out_dir`` holds a campaign and ``resume`` is False,
                or holds none and ``resume`` is True.
        """
        with RunDirectory(self.out_dir, "campaign", command="molgen optimize").open(resume) as run:
            return self._run(run, resume)

    def _run(self, run: RunDirectory, resume: bool) -> CampaignResult:
        c, store = self.config, run.store
        oracle = Oracle(self.objective, self.domain, c.budget, listener=lambda keys, objs, table: self._persist(store, keys, table))
        if resume:
            self._restore(run, oracle)
        started = time.perf_counter()
        bar = self._progress_bar(oracle)
        idle, stop_reason, logged = 0, "budget spent", len(oracle.history) // c.log_every
        converge = c.converged_patience is not None
        unchanged, top100 = 0, self._top_scores(oracle) if converge else None
        try:
            while oracle.remaining > 0:
                self.step += 1
                t0 = time.perf_counter()
                before = oracle.calls
                texts = self.strategy.propose(c.batch_size)
                objs = [self.domain.try_parse(t) for t in texts]
                keys = [None if o is None else self.domain.key(o) for o in objs]
                self._texts = {k: t for k, t in zip(keys, texts) if k is not None}
                scores = oracle.score(objs)
                rewards = self._bounded(self.diversity.apply(objs, keys, scores))
                if self.diversity.last_full and hasattr(self.strategy, "forget"):
                    # Augmented Memory's selective purge, before the update replays the memory.
                    self.strategy.forget(self.diversity.keys_of(self.diversity.last_full))
                stats = self.strategy.update(texts, keys, rewards)
                new = oracle.calls - before
                store.log_step(self.step, len(texts), sum(o is not None for o in objs), new,
                               float(np.nanmean(np.nan_to_num(rewards, nan=0.0))) if len(texts) else float("nan"),
                               stats.get("loss"), time.perf_counter() - t0)
                if self.step % c.checkpoint_every == 0:
                    run.save_checkpoint(self.strategy, self.step)
                if len(oracle.history) // c.log_every > logged:
                    logged = len(oracle.history) // c.log_every
                    self._write_progress(run, oracle)
                if bar is not None:
                    bar.update(new)
                    if new:
                        best = np.sort(np.nan_to_num([s for _, s in oracle.history], nan=0.0))[::-1][:10]
                        bar.set_postfix(best=f"{best[0]:.3f}", top10=f"{best.mean():.3f}")
                idle = 0 if new else idle + 1
                if idle >= c.max_idle_steps:
                    stop_reason = f"no new object in {idle} steps"
                    break
                if getattr(self.strategy, "exhausted", False):
                    stop_reason = "strategy exhausted: nothing new left to try"
                    break
                if converge:  # sorting the history each step is only paid for when asked
                    previous, top100 = top100, self._top_scores(oracle)
                    if oracle.calls > c.converged_after:
                        unchanged = unchanged + 1 if top100 == previous else 0
                        if unchanged >= c.converged_patience:
                            stop_reason = f"converged: top-100 unchanged for {unchanged} steps"
                            break
        finally:
            if bar is not None:
                bar.close()
        run.save_checkpoint(self.strategy, self.step)
        self._write_progress(run, oracle)
        summary = self._finish(run, oracle, stop_reason, time.perf_counter() - started)
        return CampaignResult(self.out_dir, self.step, oracle.calls, c.budget, summary["seconds"], stop_reason, summary)

    def _bounded(self, rewards: np.ndarray) -> np.ndarray:
        """Rewards inside the strategy's documented range (``reward_range``;
        REINVENT's is [0, 1]): a hostile or mis-scaled objective (``1e300``)
        is clipped and counted in the summary instead of blowing the policy
        up. Failures (NaN) stay NaN: strategies treat them as no reward."""
        bounds = getattr(self.strategy, "reward_range", None)
        rewards = np.asarray(rewards, dtype=float)
        if bounds is None:
            return np.where(np.isfinite(rewards), rewards, np.nan)
        finite = np.isfinite(rewards)
        outside = finite & ((rewards < bounds[0]) | (rewards > bounds[1]))
        if outside.any():
            self.clipped += int(outside.sum())
            self.clip_examples = (self.clip_examples + [float(v) for v in rewards[outside][:3]])[:5]
        return np.where(finite, np.clip(rewards, *bounds), np.nan)

    @staticmethod
    def _top_scores(oracle: Oracle) -> list[float]:
        return [score for _, score in oracle.best(100)]

    def _persist(self, store: CandidateStore, keys: list[str], table) -> None:
        store.add_scored(self.step, keys, [self._texts.get(k, k) for k in keys], table)

    # -- resume -------------------------------------------------------------
    def _restore(self, run: RunDirectory, oracle: Oracle) -> None:
        step = run.load_checkpoint(self.strategy)
        if step is not None:
            self.step = step
        oracle.restore(run.store.evaluations())
        # The filter's memory is a function of every stored evaluation.
        for cand in run.store.candidates():
            obj = self.domain.try_parse(cand.text)
            self.diversity.apply([obj], [cand.key], np.array([cand.total]))

    # -- reporting ----------------------------------------------------------
    def _progress_bar(self, oracle: Oracle):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.config.budget, initial=oracle.calls, unit="call", desc=self.strategy.name, dynamic_ncols=True)

    def _write_progress(self, run: RunDirectory, oracle: Oracle) -> None:
        """Rewrite progress.csv from the oracle history (PMO's every-100-calls log)."""
        every = self.config.log_every
        scores = np.nan_to_num(np.array([s for _, s in oracle.history], dtype=float), nan=0.0)
        marks = list(range(every, len(scores) + 1, every))
        if marks and marks[-1] != len(scores) or not marks:
            marks.append(len(scores))
        rows, previous, area, last = [], 0.0, 0.0, 0
        for n in marks:
            part = np.sort(scores[:n])[::-1]
            top10 = float(part[:10].mean()) if n else 0.0
            area += (n - last) * (top10 + previous) / 2
            previous, last = top10, n
            rows.append([n, *(f"{float(part[:k].mean()) if n else 0.0:.6f}" for k in (1, 10, 100)), f"{area / self.config.budget:.6f}"])
        run.write_csv(PROGRESS_NAME, ["calls", "top1", "top10", "top100", "auc_top10_so_far"], rows)

    def _finish(self, run: RunDirectory, oracle: Oracle, stop_reason: str, seconds: float) -> dict[str, Any]:
        store, steps = run.store, run.store.step_totals()
        summary: dict[str, Any] = {
            "strategy": self.strategy.name,
            "objective": getattr(self.objective, "name", "objective"),
            "budget": self.config.budget,
            "stop_reason": stop_reason,
            "steps": self.step,
            "seconds": seconds,
            "total_step_seconds": steps.seconds,
            "sampled": steps.sampled,
            "valid_fraction": steps.valid / max(1, steps.sampled),
            **oracle.summary(),
            "diversity_filter": {**self.config.diversity.model_dump(), **self.diversity.summary()},
            "best": [{"key": k, "score": s} for k, s in oracle.best(10)],
            "skipped_updates": getattr(self.strategy, "skipped_updates", 0),
        }
        if self.clipped:
            summary["rewards_clipped"] = {
                "count": self.clipped, "range": list(self.strategy.reward_range), "examples": self.clip_examples,
                "reason": "scores outside the strategy's reward range were clipped to it before the update "
                          "(the store keeps the raw scores)",
            }
        exports = {}
        if self.config.export_top:
            n = self.config.export_top
            exports["csv"] = str(store.export_csv(self.out_dir / f"top{n}.csv", top=n).name)
            if self.domain.exports_sdf:
                exports["sdf"] = str(store.export_sdf(self.out_dir / f"top{n}.sdf", top=n).name)
        summary["exports"] = exports
        run.write_summary(summary)
        return summary

