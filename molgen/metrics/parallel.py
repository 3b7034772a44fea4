"""Parallel map over chunks, for the RDKit- and pymatgen-bound parts of the
metrics (torch never runs in the workers).

By default a local pool of ``n_jobs`` forked processes runs the chunks. Inside
:func:`metrics_executor` they run through that executor instead (``molgen
evaluate --executor ray``: a Ray cluster), one executor for the whole
evaluation so a cluster is joined once.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

from molgen.core.errors import MolgenError
from molgen.core.executors import TaskFailure

_EXECUTOR: contextvars.ContextVar = contextvars.ContextVar("molgen_metrics_executor", default=None)


@contextlib.contextmanager
def metrics_executor(executor) -> Iterator[None]:
    """Run the metrics' chunks through ``executor`` (a
    :class:`molgen.core.executors.Executor`; None: the default local pool)
    inside the block. The caller closes the executor."""
    token = _EXECUTOR.set(executor)
    try:
        yield
    finally:
        _EXECUTOR.reset(token)


def run_chunks(function: Callable, tasks: list, n_jobs: int) -> Iterable:
    """``map(function, tasks)``: through the executor of
    :func:`metrics_executor` when one is set, else over ``n_jobs`` forked
    worker processes when > 1.

    Raises:
        MolgenError: a chunk failed in an executor's worker (a metric
            cannot have holes).
    """
    executor = _EXECUTOR.get()
    if executor is not None:
        results = dict(executor.map(function, tasks))
        failed = [(i, r) for i, r in results.items() if isinstance(r, TaskFailure)]
        if failed:
            raise MolgenError(f"a metrics chunk failed in a worker: {failed[0][1].error}")
        return [results[i] for i in range(len(tasks))]
    if n_jobs <= 1 or len(tasks) <= 1:
        return map(function, tasks)
    # fork keeps start-up cheap; workers only run RDKit/pymatgen, never torch.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=min(n_jobs, len(tasks)), mp_context=multiprocessing.get_context(method))
    with pool:
        return list(pool.map(function, tasks))


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or ``0`` -> all cores; negative -> all but that many."""
    cores = os.cpu_count() or 1
    if not n_jobs:
        return cores
    return max(1, cores + n_jobs + 1) if n_jobs < 0 else n_jobs
