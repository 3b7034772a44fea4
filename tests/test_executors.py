"""Executors: every index exactly once, completion order, failures and
crashed workers as TaskFailure, and the registry's error message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _executor_tasks import crash_on_two, fail_on_three, square_after, thread_settings

from molgen.core.errors import RegistryError
from molgen.core.executors import ProcessPoolExecutor, SerialExecutor, TaskFailure, make_executor


@pytest.fixture(scope="module")
def pool():
    """One two-worker pool for the module: spawning workers costs seconds."""
    with ProcessPoolExecutor(workers=2) as executor:
        yield executor


def test_serial_yields_every_index_with_failures_in_place():
    results = list(SerialExecutor().map(fail_on_three, range(5)))
    assert [index for index, _ in results] == [0, 1, 2, 3, 4]
    assert results[3][1] == TaskFailure("ValueError: three is not allowed")
    assert [value for _, value in results if not isinstance(value, TaskFailure)] == [0, 10, 20, 40]


def test_process_pool_yields_in_completion_order(pool):
    # Index 0 is slow, so the others overtake it.
    payloads = [(0, 1.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0)]
    results = list(pool.map(square_after, payloads))
    assert sorted(index for index, _ in results) == [0, 1, 2, 3, 4]
    assert dict(results) == {0: 0, 1: 1, 2: 4, 3: 9, 4: 16}
    assert results[-1][0] == 0


def test_process_pool_reports_exceptions_and_is_reused(pool):
    first = pool._pool
    results = dict(pool.map(fail_on_three, range(6)))
    assert results.pop(3) == TaskFailure("ValueError: three is not allowed")
    assert results == {0: 0, 1: 10, 2: 20, 4: 40, 5: 50}
    assert pool._pool is first  # created once, reused across calls


def test_process_pool_survives_a_crashing_worker(pool):
    results = list(pool.map(crash_on_two, range(6)))
    assert sorted(index for index, _ in results) == list(range(6))
    outcome = dict(results)
    assert isinstance(outcome[2], TaskFailure) and outcome[2].error.startswith("worker process crashed")
    assert {i: v for i, v in outcome.items() if i != 2} == {0: 1, 1: 2, 3: 4, 4: 5, 5: 6}
    # The recreated pool serves the next call.
    assert dict(pool.map(fail_on_three, [1, 2])) == {0: 10, 1: 20}


def test_process_pool_workers_use_the_requested_threads(pool):
    assert all(value == ("1", 1) for _, value in pool.map(thread_settings, [None, None]))


def test_make_executor_and_unknown_name():
    with make_executor("serial") as executor:
        assert isinstance(executor, SerialExecutor)
    with pytest.raises(RegistryError, match="valid names: process, ray, serial"):
        make_executor("threads", 2)


@pytest.mark.slow
def test_ray_executor_on_a_local_instance():
    ray = pytest.importorskip("ray")
    import _executor_tasks

    from molgen.core.executors import RayExecutor

    # Ray workers do not see tests/ on sys.path: ship the task module by value.
    ray.cloudpickle.register_pickle_by_value(_executor_tasks)
    try:
        with RayExecutor(num_cpus=2) as executor:
            results = dict(executor.map(fail_on_three, range(5)))
    finally:
        ray.cloudpickle.unregister_pickle_by_value(_executor_tasks)
    assert results.pop(3) == TaskFailure("ValueError: three is not allowed")
    assert results == {0: 0, 1: 10, 2: 20, 4: 40}


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    """A parent killed by a signal never closes its pool; its workers must not outlive it."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from molgen.core.executors import ProcessPoolExecutor\n"
        "from _executor_tasks import worker_pid\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1)\n"
        "    print(next(iter(pool.map(worker_pid, [0])))[1], flush=True)\n"
        "    import time; time.sleep(60)\n"
    )
    here = Path(__file__).resolve().parent
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=here.parent,
                              env={**os.environ, "PYTHONPATH": str(here)})
    worker = int(parent.stdout.readline())
    os.kill(worker, 0)  # alive while the parent lives
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the pool worker outlived its killed parent")
