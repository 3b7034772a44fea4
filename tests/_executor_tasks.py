"""Top-level task functions for tests/test_executors.py: spawned pool workers
import them by module name (pytest puts tests/ on sys.path, and spawn passes
sys.path on to the workers)."""

from __future__ import annotations

import os
import time


def square_after(payload: tuple[int, float]) -> int:
    """Sleep ``payload[1]`` seconds, then return ``payload[0] ** 2``."""
    value, delay = payload
    time.sleep(delay)
    return value * value


def fail_on_three(value: int) -> int:
    """``value * 10``, raising for 3."""
    if value == 3:
        raise ValueError("three is not allowed")
    return value * 10


def crash_on_two(value: int) -> int:
    """``value + 1``; kills its own worker process for 2 (as a segfault would)."""
    if value == 2:
        os._exit(1)
    time.sleep(0.05)
    return value + 1


def thread_settings(_: object) -> tuple[str | None, int]:
    """The worker's OMP_NUM_THREADS and torch thread count."""
    import torch

    return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()


def worker_pid(_: object) -> int:
    """The process id of the worker running the task."""
    return os.getpid()
