"""Process-parallel map over chunks, for the RDKit- and pymatgen-bound
parts of the metrics (torch never runs in the workers)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable


def run_chunks(function: Callable, tasks: list, n_jobs: int) -> Iterable:
    """``map(function, tasks)``, over ``n_jobs`` worker processes when > 1."""
    if n_jobs <= 1 or len(tasks) <= 1:
        return map(function, tasks)
    # fork keeps start-up cheap; workers only run RDKit/pymatgen, never torch.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    executor = ProcessPoolExecutor(max_workers=min(n_jobs, len(tasks)), mp_context=multiprocessing.get_context(method))
    with executor:
        return list(executor.map(function, tasks))


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or ``0`` -> all cores; negative -> all but that many."""
    cores = os.cpu_count() or 1
    if not n_jobs:
        return cores
    return max(1, cores + n_jobs + 1) if n_jobs < 0 else n_jobs
