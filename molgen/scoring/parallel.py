"""Objectives whose batches run through an executor (serial, process pool,
Ray): an oracle such as docking scores a batch on many cores or machines.

An objective object holds live resources (a loaded predictor, a docking
receptor), so it is not shipped to workers: a worker rebuilds it from an
:class:`ObjectiveSource` (a registered name, or a TOML file's contents) once
and keeps it for every later chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molgen.core.errors import MolgenError
from molgen.core.executors import Executor, TaskFailure, ordered_map
from molgen.scoring.objective import OBJECTIVES, Objective, ScoreTable

#: Objects per executor task: large enough that shipping a chunk costs little
#: next to scoring it, small enough to spread a batch over the workers.
DEFAULT_CHUNK = 256


@dataclass(frozen=True)
class ObjectiveSource:
    """An objective as data a worker can rebuild it from.

    Attributes:
        name: A registered objective name (or None).
        spec: The parsed TOML of an objective file (or None): shipped as
            data, so a worker on another machine needs no copy of the file.
        where: Where the spec came from (for error messages).
        device: Where learned components run (None: the CPU).
    """

    name: str | None = None
    spec: dict[str, Any] | None = None
    where: str = "objective"
    device: str | None = None

    @classmethod
    def of(cls, name_or_path: str | Path, device: str | None = None) -> "ObjectiveSource":
        """The source of a registered name or a TOML path (read now).

        Args:
            name_or_path: Registered objective name or TOML path.
            device: Where learned components run (None: the CPU).

        Raises:
            ConfigError: unreadable TOML; RegistryError: unknown name.
        """
        from molgen.core.config import read_toml

        text = str(name_or_path)
        if text.endswith(".toml") or Path(text).is_file():
            return cls(spec=read_toml(text), where=text, device=device)
        OBJECTIVES.get(text)  # refuse an unknown name here, not in a worker
        return cls(name=text, device=device)

    def build(self) -> Objective:
        """A fresh objective."""
        from molgen.scoring.learned import predictor_device

        with predictor_device(self.device):
            if self.spec is not None:
                return Objective.from_spec(self.spec, where=self.where)
            return OBJECTIVES.get(self.name)()

    def key(self) -> str:
        """Identifies the objective (the worker-side cache key)."""
        return json.dumps([self.name, self.spec, self.device], sort_keys=True, default=str)


#: Worker side: objectives built so far, by :meth:`ObjectiveSource.key`.
_BUILT: dict[str, Objective] = {}


def built_objective(source: ObjectiveSource) -> Objective:
    """The objective of ``source``, built once per process."""
    key = source.key()
    if key not in _BUILT:
        _BUILT[key] = source.build()
    return _BUILT[key]


def component_names(objective) -> tuple[list[str], list[str]]:
    """``(weighted components, filter-only components)`` of an objective, in
    the order its :class:`ScoreTable` holds them."""
    names = [t.component.name for t in objective.terms]
    return names, [n for n in dict.fromkeys(f.component.name for f in objective.filters) if n not in names]


def forget_objective(source: ObjectiveSource) -> None:
    """Drop this process's built copy of ``source`` (its predictor weights may
    change on disk; a long-lived process must not keep a stale one)."""
    _BUILT.pop(source.key(), None)


def score_part(payload: tuple[ObjectiveSource, Sequence[Any]]) -> ScoreTable:
    """Executor task: score one chunk of objects (None entries are invalid)."""
    source, objs = payload
    return built_objective(source)(list(objs))


def concat_tables(tables: Sequence[ScoreTable]) -> ScoreTable:
    """One table of consecutive chunks' tables (same components)."""
    first = tables[0]
    seconds: dict[str, float] = {}
    for table in tables:
        for name, value in table.seconds.items():
            seconds[name] = seconds.get(name, 0.0) + value
    return ScoreTable(
        raw={n: np.concatenate([t.raw[n] for t in tables]) for n in first.raw},
        transformed={n: np.concatenate([t.transformed[n] for t in tables]) for n in first.transformed},
        total=np.concatenate([t.total for t in tables]),
        reasons=[r for t in tables for r in t.reasons],
        rejected_by=[r for t in tables for r in t.rejected_by],
        seconds=seconds,
    )


class ExecutorObjective:
    """Scores batches in chunks through an executor; results are identical to
    the objective's own (chunks are scored independently and joined in order).

    Args:
        source: The objective.
        executor: Where the chunks run (closed by :meth:`close`).
        chunk_size: Objects per task.
        workers: Tasks in flight at once is a few times this.

    Attributes:
        name, filters, terms: Those of the objective (built once here too,
            which also checks the source before any worker starts).
    """

    def __init__(self, source: ObjectiveSource, executor: Executor, chunk_size: int = DEFAULT_CHUNK, workers: int = 1):
        if chunk_size < 1:
            raise MolgenError(f"chunk size must be >= 1, got {chunk_size}")
        local = built_objective(source)
        self.source, self.executor, self.chunk_size = source, executor, chunk_size
        self.window = max(2, 4 * workers)
        self.name, self.filters, self.terms = local.name, local.filters, local.terms

    def __call__(self, objs: Sequence[Any]) -> ScoreTable:
        """Score ``objs`` (None entries are invalid objects). A chunk whose
        task failed as a whole (its worker died, the objective raised) gets
        NaN scores with the error as each object's reason: recorded, not
        raised, so a long run keeps everything else.
        """
        objs = list(objs)
        if not objs:
            return built_objective(self.source)([])
        chunks = [objs[i : i + self.chunk_size] for i in range(0, len(objs), self.chunk_size)]
        results = ordered_map(self.executor, score_part, ((self.source, chunk) for chunk in chunks), self.window)
        return concat_tables([self._failed(len(chunk), result.error) if isinstance(result, TaskFailure) else result
                              for chunk, result in zip(chunks, results)])

    def _failed(self, n: int, error: str) -> ScoreTable:
        names, extra = component_names(self)
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        raw = {name: nan() for name in [*names, *extra]}
        return ScoreTable(raw, {name: nan() for name in names}, nan(), [f"scoring failed in a worker: {error}"] * n, [None] * n, {})

    def close(self) -> None:
        """Release the executor's workers and this process's copy of the objective."""
        self.executor.close()
        forget_objective(self.source)
