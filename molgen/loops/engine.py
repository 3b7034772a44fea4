"""The campaign engine's run directory: what every loop (``optimize``,
``discover``, ``screen``) does with the folder it works in.

One place opens a run (locked against a second writer, its store open, a
new run refused where one is stored, a resume refused where none is),
saves and restores strategy checkpoints, writes tables and the summary
atomically, and claims a directory for a workflow's settings file. The loops
keep only their own round logic.

Run directory (the files every loop shares)::

    candidates.sqlite      every evaluation (see molgen.loops.store)
    checkpoint.json        points at the newest complete checkpoint-<step>/
    checkpoint-<step>/     state.safetensors + state.json of the strategy
    summary.json           final figures
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from molgen.core.errors import MolgenError
from molgen.core.outputs import LOCK_NAME, RunLock, prepare_run_dir
from molgen.core.serialization import atomic_open, load_tensors, read_json, save_tensors, write_json
from molgen.loops.store import CandidateStore

STORE_NAME = "candidates.sqlite"
CHECKPOINT_POINTER = "checkpoint.json"
SUMMARY_NAME = "summary.json"


class Checkpointable(Protocol):
    """What a checkpoint needs from a strategy."""

    name: str
    device: Any

    def state(self) -> tuple[dict, dict]: ...

    def load_state(self, tensors: dict, data: dict) -> None: ...


def save_checkpoint(out_dir: Path, strategy: Checkpointable, step: int) -> None:
    """Write the strategy's state as ``checkpoint-<step>/`` and point
    ``checkpoint.json`` at it (the pointer moves only once the folder is
    complete, so a kill mid-write leaves the previous checkpoint in force).

    Args:
        out_dir: Run directory.
        strategy: Its ``state()`` is saved.
        step: Step (or round) the state belongs to.
    """
    tensors, data = strategy.state()
    name = f"checkpoint-{step:06d}"
    folder = out_dir / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    save_tensors(folder / "state.safetensors", tensors)
    write_json(folder / "state.json", {**data, "step": step, "strategy": strategy.name})
    write_json(out_dir / CHECKPOINT_POINTER, {"step": step, "dir": name})
    for old in out_dir.glob("checkpoint-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out_dir: Path, strategy: Checkpointable) -> int | None:
    """Restore the newest checkpoint of ``out_dir`` into ``strategy``.

    Returns:
        Its step, or None when the run has no checkpoint yet.
    """
    pointer = out_dir / CHECKPOINT_POINTER
    if not pointer.is_file():
        return None
    info = read_json(pointer)
    folder = out_dir / info["dir"]
    strategy.load_state(load_tensors(folder / "state.safetensors", strategy.device), read_json(folder / "state.json"))
    return int(info["step"])


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV table atomically (a reader never sees half a file).

    Args:
        path: The file.
        header: Column names.
        rows: One sequence of cells per row.
    """
    with atomic_open(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Write dicts as a CSV table atomically; the columns are every key, in
    the order they first appear."""
    names: list[str] = []
    for record in records:
        names += [k for k in record if k not in names]
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(records)


def read_records(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV table written by :func:`write_records` (none when the file is missing)."""
    if not path.is_file():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def require_resumable(path: Path, what: str, settings: str) -> None:
    """Refuse to resume a run directory without the workflow's settings file.

    Args:
        path: The run directory.
        what: The kind of run, for the message (``campaign``, ``discovery run``).
        settings: The settings file a run of this workflow writes first.

    Raises:
        MolgenError: ``settings`` is missing.
    """
    if not (path / settings).is_file():
        raise MolgenError(f"{path} holds no {what} to resume (no {settings})")


def claim_new_run(path: Path, what: str, settings: str, kind: str) -> Path:
    """Make ready the run directory of a new run: refuse one that holds a run
    (the CLI has refused it already unless ``--overwrite`` emptied it) and
    create it (:func:`~molgen.core.outputs.prepare_run_dir`).

    Args:
        path: The run directory.
        what: The kind of run, for the message.
        settings: The settings file a run of this workflow writes first.
        kind: The command (a key of :data:`~molgen.core.outputs.RUN_KINDS`).

    Returns:
        The directory.

    Raises:
        MolgenError: a run is there, or the folder is not usable.
    """
    if (path / settings).is_file():
        raise MolgenError(f"{path} already holds a {what}; pass --resume or choose another --out")
    return prepare_run_dir(path, kind=kind)


def _held_by_this_process(path: Path) -> bool:
    """Whether the lock file of ``path`` names this process: the CLI locks a
    run directory around the whole command, and ``flock`` is not re-entrant
    across two opens of the same file, so the engine must recognise the lock
    its own command already holds."""
    try:
        info = json.loads((path / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname()


class RunDirectory:
    """An open run directory: locked, its candidate store open (a context manager).

    Args:
        path: The directory (created if missing).
        what: The kind of run, for messages (``campaign``, ``discovery run``, ``screen``).
        unit: What the store's rows count, for messages (``calls``, ``candidates``).
        command: Names the lock's holder for a second command (``molgen optimize``).

    Attributes:
        store: The :class:`~molgen.loops.store.CandidateStore` (after :meth:`open`).
    """

    def __init__(self, path: str | Path, what: str, unit: str = "calls", command: str = "molgen"):
        self.path = Path(path)
        self.what = what
        self.unit = unit
        self.command = command
        self.store: CandidateStore | None = None
        self._stack = ExitStack()

    def open(self, resume: bool, require_run: bool = True) -> "RunDirectory":
        """Lock the directory, open its store and check it suits the run.

        Args:
            resume: The run continues the one stored here.
            require_run: With ``resume``, refuse a directory with neither
                evaluations nor a checkpoint (a screen resumes from nothing).

        Returns:
            self.

        Raises:
            MolgenError: another process holds the directory; a new run where
                one is stored; a resume where none is.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._lock()
            self.store = self._stack.enter_context(CandidateStore(self.path / STORE_NAME))
            count = self.store.count()
            if not resume and count > 0:
                raise MolgenError(f"{self.path} already holds a {self.what} ({count} {self.unit}); resume it or choose another output")
            if resume and require_run and count == 0 and not self.has_checkpoint():
                raise MolgenError(f"{self.path} holds no {self.what} to resume")
        except BaseException:
            self.close()
            raise
        return self

    def _lock(self) -> None:
        lock = RunLock(self.path, self.command)
        try:
            self._stack.enter_context(lock)
        except MolgenError:
            if not _held_by_this_process(self.path):
                raise

    def close(self) -> None:
        """Close the store and release the lock."""
        self._stack.close()

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- checkpoints ----------------------------------------------------------
    def has_checkpoint(self) -> bool:
        """Whether a checkpoint is stored."""
        return (self.path / CHECKPOINT_POINTER).is_file()

    def save_checkpoint(self, strategy: Checkpointable, step: int) -> None:
        """See :func:`save_checkpoint`."""
        save_checkpoint(self.path, strategy, step)

    def load_checkpoint(self, strategy: Checkpointable) -> int | None:
        """See :func:`load_checkpoint`."""
        return load_checkpoint(self.path, strategy)

    # -- files ------------------------------------------------------------------
    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Write ``name`` in the run directory (:func:`write_csv`)."""
        write_csv(self.path / name, header, rows)

    def write_records(self, name: str, records: Sequence[dict[str, Any]]) -> None:
        """Write ``name`` in the run directory (:func:`write_records`)."""
        write_records(self.path / name, records)

    def read_records(self, name: str) -> list[dict[str, str]]:
        """Read ``name`` of the run directory (:func:`read_records`)."""
        return read_records(self.path / name)

    def write_json(self, name: str, data: Any) -> None:
        """Write ``name`` in the run directory as JSON, atomically."""
        write_json(self.path / name, data)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json``."""
        self.write_json(SUMMARY_NAME, summary)
