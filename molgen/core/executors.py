"""Where expensive oracle calls run: in process, in a local process pool or on
a Ray cluster, behind one interface.

:meth:`Executor.map` yields ``(index, result)`` as each call completes, so a
loop can store every result at once (and lose nothing when interrupted). A
call that raises, or whose worker process dies, yields a :class:`TaskFailure`
in place of its result; the other calls carry on.

Task functions must be importable top-level functions (they are pickled by
reference into worker processes). Because workers are started with
``spawn``, a script that uses :class:`ProcessPoolExecutor` needs the usual
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from molgen.core.errors import MolgenError
from molgen.core.registry import Registry

RAY_INSTALL_HINT = "the Ray executor needs the optional extra: pip install 'molgen[ray]'"

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class TaskFailure:
    """Stands in for the result of a call that raised or lost its worker.

    Attributes:
        error: ``"<ExceptionType>: <message>"`` or ``"worker process crashed: ..."``.
    """

    error: str


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Executor(ABC):
    """Runs ``fn(payload)`` for many payloads; a context manager that closes itself."""

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """Call ``fn`` on every payload.

        Args:
            fn: A picklable top-level function of one argument.
            payloads: Arguments (picklable for the parallel executors); read lazily.

        Returns:
            An iterator of ``(index, result)`` in completion order, each index
            exactly once; a failed call gives ``(index, TaskFailure)``.
        """

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs every call in the calling process, in order."""

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        for index, payload in enumerate(payloads):
            try:
                result = fn(payload)
            except Exception as exc:
                result = TaskFailure(_describe(exc))
            yield index, result


def _exit_with_parent(parent: int, every: float = 2.0) -> None:
    """Worker side: end this process once its parent is gone. A parent killed
    by a signal never shuts its pool down, and the workers would otherwise
    live on, idle, holding memory (and a loaded potential)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="molgen-parent-watch").start()


def _init_worker(threads: int, parent: int | None = None) -> None:
    """Pool initializer: cap the BLAS/OpenMP and torch threads of a worker, so
    ``workers * threads`` cores are used rather than ``workers * all``, and
    tie the worker's life to its parent's."""
    if parent is not None:
        _exit_with_parent(parent)
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only allowed before the first parallel op; harmless when late
        pass


class ProcessPoolExecutor(Executor):
    """Runs calls in a pool of ``spawn``-started worker processes.

    The pool is created on the first :meth:`map` and reused (a worker keeps
    its caches, such as a loaded potential, between calls). At most
    ``workers`` calls are in flight, so a crash can only involve the calls
    then running: those are retried one at a time in a fresh pool, the one
    that kills its worker again is reported as ``TaskFailure("worker process
    crashed: ...")`` and the others' results are yielded normally (so a call
    may run twice: oracle functions should be free of side effects).

    Args:
        workers: Worker processes.
        threads_per_worker: torch/OpenMP threads in each worker.

    Raises:
        ValueError: non-positive ``workers`` or ``threads_per_worker``.
    """

    def __init__(self, workers: int, threads_per_worker: int = 1):
        if workers < 1 or threads_per_worker < 1:
            raise ValueError(f"workers and threads_per_worker must be >= 1, got {workers} and {threads_per_worker}")
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self._pool: futures.ProcessPoolExecutor | None = None

    def _get_pool(self) -> futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),  # fork would copy torch/OpenMP state
                initializer=_init_worker,
                initargs=(self.threads_per_worker, os.getpid()),
            )
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        todo = enumerate(payloads)
        running: dict[futures.Future, tuple[int, Any]] = {}
        suspects: list[tuple[int, Any]] = []  # were in flight when a worker died
        try:
            while True:
                if suspects:
                    yield self._run_isolated(fn, *suspects.pop(0))
                    continue
                for index, payload in todo:
                    try:
                        running[self._get_pool().submit(fn, payload)] = (index, payload)
                    except BrokenProcessPool:  # broke before we saw a failed future
                        suspects.append((index, payload))
                        self._discard_pool()
                        break
                    if len(running) >= self.workers:
                        break
                if not running:
                    if suspects:
                        continue
                    return
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    index, payload = running.pop(future)
                    exc = None if future.cancelled() else future.exception()
                    if future.cancelled() or isinstance(exc, BrokenProcessPool):
                        suspects.append((index, payload))
                    else:
                        yield index, TaskFailure(_describe(exc)) if exc is not None else future.result()
                if suspects:
                    # The pool is broken: every call still running is lost with it.
                    suspects.extend(running.pop(future) for future in list(running))
                    suspects.sort(key=lambda item: item[0])
                    self._discard_pool()
        finally:
            for future in running:  # the consumer stopped early
                future.cancel()

    def _run_isolated(self, fn: Callable[[Any], Any], index: int, payload: Any) -> tuple[int, Any]:
        """Run one call alone in the pool, so a crash can be pinned on it."""
        try:
            return index, self._get_pool().submit(fn, payload).result()
        except BrokenProcessPool as exc:
            self._discard_pool()
            return index, TaskFailure(f"worker process crashed: {exc}")
        except Exception as exc:
            return index, TaskFailure(_describe(exc))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise MolgenError(f"{RAY_INSTALL_HINT} ({exc})") from None
    return ray


class RayExecutor(Executor):
    """Runs calls as Ray tasks (one CPU each; Ray caps their OpenMP threads).

    Connects to ``address`` (or ``$RAY_ADDRESS``) when given, else starts a
    local Ray instance with ``num_cpus``; an already initialised Ray is used
    as it is. :meth:`close` shuts Ray down only if this executor started it.

    Args:
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``), or None.
        num_cpus: CPUs of a local instance (ignored when connecting).
        max_retries: Ray's retries of a task whose worker died.
        max_in_flight: Most tasks submitted and not yet yielded (default:
            twice the cluster's CPUs), so memory stays flat however many
            payloads there are.

    Raises:
        MolgenError: ray is not installed (with the install hint).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 1,
                 max_in_flight: int | None = None):
        self._ray = _ray()
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self._remotes: dict[Callable, Any] = {}
        self._started = False
        if not self._ray.is_initialized():
            connect = address or os.environ.get("RAY_ADDRESS")
            # Ray refuses num_cpus when joining an existing cluster.
            # Worker output stays in Ray's logs: oracle libraries warn a lot, errors come back as TaskFailure.
            self._ray.init(address=connect, num_cpus=None if connect else num_cpus,
                           include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
            self._started = True

    def map(self, fn: Callable[[Any], Any], payloads: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        remote = self._remote(fn)
        limit = self.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        todo = enumerate(payloads)
        pending: dict[Any, int] = {}
        try:
            while True:
                # Payloads are read (and shipped) only as slots free up: a million-row file never sits in the object store.
                for index, payload in todo:
                    pending[remote.remote(payload)] = index
                    if len(pending) >= limit:
                        break
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    yield index, self._fetch(ref)
        finally:
            for ref in pending:  # the consumer stopped early
                ray.cancel(ref)

    def _remote(self, fn: Callable[[Any], Any]):
        """The Ray task of ``fn``, exported once per executor."""
        if fn not in self._remotes:
            self._remotes[fn] = self._ray.remote(num_cpus=1, max_retries=self.max_retries)(fn)
        return self._remotes[fn]

    def _fetch(self, ref) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            return TaskFailure(_describe(cause) if cause is not None else _describe(exc))
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as exc:
            return TaskFailure(f"worker process crashed: {exc}")
        except exceptions.RayError as exc:
            return TaskFailure(_describe(exc))

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


EXECUTORS: Registry[Callable[[int], Executor]] = Registry("executor")
EXECUTORS.register("serial", lambda workers: SerialExecutor())
EXECUTORS.register("process", lambda workers: ProcessPoolExecutor(workers))
EXECUTORS.register("ray", lambda workers: RayExecutor(num_cpus=workers))


def ordered_map(executor: Executor, fn: Callable[[Any], Any], payloads: Iterable[Any], window: int) -> Iterator[Any]:
    """``fn`` over ``payloads`` through ``executor``, results in input order.

    Payloads are taken ``window`` at a time and a window's results are
    yielded once all of them are in, so at most ``window`` payloads and
    results are held whatever the length of ``payloads`` (a streamed file
    keeps flat memory); make ``window`` a few times the workers so the
    wait for a window's slowest call costs little.

    Args:
        executor: Where the calls run.
        fn: A picklable top-level function of one argument.
        payloads: Arguments, read lazily.
        window: Payloads in flight at most (>= 1).

    Returns:
        An iterator of results (a :class:`TaskFailure` for a failed call).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    payloads = iter(payloads)
    while True:
        wave = list(itertools.islice(payloads, window))
        if not wave:
            return
        results = dict(executor.map(fn, wave))
        yield from (results[i] for i in range(len(wave)))


def make_executor(name: str, workers: int = 1) -> Executor:
    """Build an executor by name.

    Args:
        name: ``"serial"``, ``"process"`` or ``"ray"``.
        workers: Worker processes (process pool) or CPUs of a local Ray instance.

    Returns:
        The executor (use it as a context manager).

    Raises:
        RegistryError: unknown name, listing the valid ones.
        MolgenError: ray requested but not installed.
    """
    return EXECUTORS.get(name)(workers)
