"""Surrogate-filtered screening of a fixed library (batched active learning,
MolPAL style): score a random start set with the expensive oracle, fit a
predictor with uncertainty, acquire the next batch by an acquisition
function, repeat.

Same guarantees as the optimisation loop: each oracle batch is committed to
``candidates.sqlite`` as it is scored (``step`` = round), a killed run resumes
without re-scoring or double counting, and the budget is the number of
stored evaluations. Selections are deterministic given the seed (the start
set is a seeded permutation, round ``r``'s predictor is seeded with
``seed + r``), so a resumed round re-derives the same batch and only scores
what is missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError
from molgen.loops.acquisition import acquisition_scores
from molgen.loops.engine import RunDirectory
from molgen.scoring.oracle import Oracle

RESULT_NAME = "screen.json"


class ScreenConfig(StrictModel):
    """Settings of :func:`screen`."""

    init_fraction: float = Field(0.01, gt=0, lt=1, description="random start set, fraction of the library")
    batch_fraction: float = Field(0.01, gt=0, lt=1, description="acquired per round, fraction of the library")
    rounds: int = Field(5, ge=0, description="acquisition rounds after the start set")
    acquisition: Literal["random", "greedy", "ucb", "ei", "thompson"] = "greedy"
    beta: float = Field(2.0, ge=0, description="UCB exploration weight")
    xi: float = Field(0.01, ge=0, description="EI margin (in objective units)")
    maximize: bool = Field(True, description="False for scores where lower is better (docking)")
    seed: int = 0


@dataclass
class ScreenResult:
    """What a screen did."""

    out_dir: Path
    calls: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    acquired: list[str] = field(default_factory=list)  # canonical keys in acquisition order
    invalid: int = 0


def screen(
    library: Sequence[str],
    domain,
    objective,
    make_predictor: Callable[[int], Any],
    out_dir: str | Path,
    config: ScreenConfig | None = None,
    resume: bool = False,
) -> ScreenResult:
    """Screen ``library`` with an objective behind a surrogate.

    Args:
        library: Texts of the candidates (duplicates by canonical key are
            merged; invalid entries are counted and skipped).
        domain: Parses texts and gives canonical keys.
        objective: The expensive oracle (any :class:`~molgen.scoring.objective.Objective`).
        make_predictor: ``round -> predictor`` with ``fit(objs, y)`` and
            ``predict(objs) -> (mean, std)``, seeded by the caller with the round.
        out_dir: Run directory.
        config: Settings.
        resume: Continue the screen stored in ``out_dir``.

    Returns:
        The result (also written to ``out_dir/screen.json``).

    Raises:
        MolgenError: empty library, or a run directory in the wrong state.
    """
    config = config or ScreenConfig()
    out_dir = Path(out_dir)
    objs, keys, texts, invalid = _library(library, domain)
    n = len(keys)
    n_init = max(1, int(round(config.init_fraction * n)))
    n_batch = max(1, int(round(config.batch_fraction * n)))
    budget = min(n, n_init + config.rounds * n_batch)
    # A screen resumed from nothing simply starts: its rounds are re-derived from the seed.
    with RunDirectory(out_dir, "screen", command="molgen screen").open(resume, require_run=False) as run:
        store = run.store
        state = {"round": 0}
        text_of = dict(zip(keys, texts))
        oracle = Oracle(objective, domain, budget, listener=lambda ks, os_, table: store.add_scored(state["round"], ks, [text_of[k] for k in ks], table))
        if resume:
            oracle.restore(store.evaluations())
        sign = 1.0 if config.maximize else -1.0
        order = np.random.default_rng(config.seed).permutation(n)
        result = ScreenResult(out_dir, 0, invalid=invalid)
        selected = [int(i) for i in order[:n_init]]
        for rnd in range(config.rounds + 1):
            state["round"] = rnd
            t0 = time.perf_counter()
            if rnd > 0:
                selected = _acquire(config, rnd, objs, keys, oracle, make_predictor, sign, n_batch, result.acquired)
            if not selected:
                break
            oracle.score([objs[i] for i in selected])
            result.acquired.extend(keys[i] for i in selected)
            values = sign * np.array([oracle.cache[k] for k in result.acquired], dtype=float)
            result.rounds.append({
                "round": rnd, "acquired": len(selected), "calls": oracle.calls,
                "best": float(sign * np.nanmax(values)) if np.isfinite(values).any() else float("nan"),
                "seconds": time.perf_counter() - t0,
            })
            store.log_step(rnd, len(selected), len(selected), len(selected), float("nan"), None, time.perf_counter() - t0)
            if oracle.remaining == 0:
                break
        result.calls = oracle.calls
        run.write_json(RESULT_NAME, {"config": config.model_dump(), "library": n, "invalid": invalid, "budget": budget,
                                     "calls": oracle.calls, "rounds": result.rounds})
        return result


def _library(library: Sequence[str], domain) -> tuple[list, list[str], list[str], int]:
    objs, keys, texts, seen, invalid = [], [], [], set(), 0
    for text in library:
        obj = domain.try_parse(text)
        if obj is None:
            invalid += 1
            continue
        key = domain.key(obj)
        if key in seen:
            continue
        seen.add(key)
        objs.append(obj)
        keys.append(key)
        texts.append(text)
    if not keys:
        raise MolgenError(f"the library holds no valid {domain.name} entries ({invalid} invalid)")
    return objs, keys, texts, invalid


def _acquire(config, rnd, objs, keys, oracle, make_predictor, sign, n_batch, acquired) -> list[int]:
    done = set(acquired)
    train = [i for i, k in enumerate(keys) if k in done and np.isfinite(oracle.cache.get(k, np.nan))]
    pool = [i for i, k in enumerate(keys) if k not in done]
    if not pool or not train:
        return []
    y = sign * np.array([oracle.cache[keys[i]] for i in train], dtype=float)
    rng = np.random.default_rng(config.seed + 1000 * rnd)
    if config.acquisition == "random":
        mean = std = np.zeros(len(pool))
    else:
        predictor = make_predictor(rnd)
        predictor.fit([objs[i] for i in train], y)
        mean, std = predictor.predict([objs[i] for i in pool])
    utility = acquisition_scores(config.acquisition, mean, std, float(np.max(y)), rng, config.beta, config.xi)
    top = np.argsort(-utility, kind="stable")[: min(n_batch, oracle.remaining)]
    return [pool[i] for i in top]
