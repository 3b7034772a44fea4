"""Where commands may write: output files that never replace an input or a
model, run directories that are never replaced by accident, and one writer
per run directory at a time.

Rules (every command follows them through these helpers):

* an output file is checked before any work: its folder must be writable,
  and it must not be an existing folder, one of the command's inputs, an
  existing file of a molgen run directory, or anything inside a model
  directory (weights and their config), unless the directory is the
  command's own. A new file beside a run (``-o RUN/samples.smi``) is
  allowed: it replaces nothing;
* a run directory that already holds a run is continued only with
  ``resume`` and replaced only with ``overwrite`` (and only if it is a molgen
  run: a folder of other files is never deleted);
* a run directory is locked while a command works in it; a second command
  gets a clear error naming the holder (pid and host). The lock is an
  ``fcntl`` lock, so it dies with its process: a killed run leaves no stale
  lock behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterable

from molgen.core.errors import MolgenError

#: Files that mark a folder as a molgen model or run directory.
RUN_MARKERS = (
    "config.json", "model.safetensors", "run.json", "train_log.csv", "checkpoint.json", "candidates.sqlite",
    "optimize.json", "predictor.json", "summary.json", "rounds.csv", "demo.json", "campaign.json",
)
LOCK_NAME = ".molgen.lock"
#: Command -> files that only its runs hold; --overwrite replaces a run of the same command only, never a
#: model directory or another command's run.
RUN_KINDS = {
    "train": ("run.json", "train_log.csv"),
    "optimize": ("optimize.json",),
    "discover": ("discover.json", "rounds.csv"),
    "fit-predictor": ("predictor.json",),
    "demo": ("demo.json",),
    "campaign": ("campaign.json",),
}


def run_kind(path: str | Path) -> str | None:
    """Which command's run ``path`` holds (None: none, or not a run)."""
    path = Path(path)
    return next((kind for kind, markers in RUN_KINDS.items() if any((path / m).exists() for m in markers)), None)


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a molgen model or run."""
    path = Path(path)
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a saved model or predictor (weights + config)."""
    path = Path(path)
    return ((path / "config.json").is_file() and (path / "model.safetensors").is_file()) or (path / "predictor.json").is_file()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    own_dir: str | Path | None = None,
    flag: str = "-o",
) -> Path:
    """Check an output file before the work that fills it.

    Args:
        path: Where the command will write.
        inputs: Files the command reads (never written over).
        own_dir: The command's own run directory, which it may write into.
        flag: The option that named the path, for messages.

    Returns:
        The path.

    Raises:
        MolgenError: the path is a folder, an input, inside a model
            directory, an existing file of a run directory (not
            ``own_dir``), or its folder cannot be created or written.
    """
    out = Path(path).expanduser()
    if out.is_dir():
        raise MolgenError(f"{flag} {out}: is a directory; give a file name")
    for source in inputs:
        if source is not None and _same_file(out, Path(source).expanduser()):
            raise MolgenError(f"{flag} {out}: is an input of this command; write somewhere else")
    own = Path(own_dir).resolve() if own_dir is not None else None
    parent = out.parent
    for folder in (parent, *parent.parents):
        if not folder.exists() or folder.resolve() == own:
            continue
        if is_model_dir(folder):
            raise MolgenError(f"{flag} {out}: is inside the model directory {folder}; write somewhere else")
        if out.exists() and is_run_dir(folder):
            raise MolgenError(f"{flag} {out}: would replace a file of the molgen run {folder}; write somewhere else")
    _check_writable_dir(parent, f"{flag} {out}")
    if out.exists() and not os.access(out, os.W_OK):
        raise MolgenError(f"{flag} {out}: exists and is not writable")
    return out


def _check_writable_dir(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and check it can take files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MolgenError(f"{what}: cannot create the folder {folder} ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise MolgenError(f"{what}: {folder} is not a folder")
    try:  # a real probe: permission bits say little to root, or on /proc and read-only mounts
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".molgen-probe-"):
            pass
    except OSError as exc:
        raise MolgenError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None


def prepare_run_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False, flag: str = "--out",
                    kind: str | None = None) -> Path:
    """Make ready a command's run directory.

    Args:
        path: The run directory.
        resume: The command continues the run there (it must exist).
        overwrite: Replace a run there (only a molgen run is ever deleted).
        flag: The option that named the path, for messages.
        kind: The command (a key of :data:`RUN_KINDS`); ``overwrite`` then
            replaces only a run of that command.

    Returns:
        The directory (created).

    Raises:
        MolgenError: a run is there and neither ``resume`` nor ``overwrite``
            was given; ``overwrite`` on a folder of other files; ``resume``
            and ``overwrite`` together; ``resume`` with no run there; an
            unwritable location.
    """
    out = Path(path).expanduser()
    if resume and overwrite:
        raise MolgenError("--resume and --overwrite contradict each other: choose one")
    if out.exists() and not out.is_dir():
        raise MolgenError(f"{flag} {out}: is a file, not a run directory")
    occupied = out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir())
    if resume:
        if not is_run_dir(out):
            raise MolgenError(f"{flag} {out}: holds no run to resume")
        return out
    if occupied:
        if not is_run_dir(out):
            raise MolgenError(f"{flag} {out}: is a folder of other files, not a molgen run; choose another --out")
        if not overwrite:
            raise MolgenError(f"{flag} {out}: already holds a run; pass --resume to continue it or --overwrite to replace it")
        found = run_kind(out)
        if kind is not None and found != kind:
            what = f"a `molgen {found}` run" if found else "a model or another molgen artefact"
            raise MolgenError(f"{flag} {out}: holds {what}; --overwrite only replaces a `molgen {kind}` run")
        with RunLock(out):  # never delete a run another command is writing
            pass
        shutil.rmtree(out)
    _check_writable_dir(out, f"{flag} {out}")
    return out


#: Set for the worker processes of a data-parallel run (``molgen train --nproc``):
#: the launching process already prepared and locked this run directory.
LOCK_HELD_ENV = "MOLGEN_RUN_LOCK_HELD"


def run_dir_owned_elsewhere(out_dir: str | os.PathLike) -> bool:
    """Whether another process of this run owns ``out_dir``: a torchrun worker
    of rank > 0 (rank 0 prepares and locks it), or a worker launched by
    ``molgen train --nproc`` (the launcher did)."""
    if os.environ.get(LOCK_HELD_ENV) == os.path.abspath(out_dir):
        return True
    try:
        return int(os.environ.get("RANK", "0")) > 0
    except ValueError:
        return False


class RunLock:
    """An exclusive lock on a run directory (a context manager).

    The lock file ``.molgen.lock`` names the holder (pid, host, command);
    the lock itself is ``fcntl.flock``, released by the kernel when the
    holder exits or dies.

    Args:
        run_dir: The directory to lock (created if missing).
        command: What holds it, for the message another command gets.

    Raises:
        MolgenError: another process holds the lock (naming it).
    """

    def __init__(self, run_dir: str | Path, command: str = "molgen"):
        self.run_dir = Path(run_dir)
        self.command = command
        self._handle = None

    def __enter__(self) -> "RunLock":
        import fcntl

        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            try:
                info = json.loads(holder)
                who = f"{info.get('command', 'molgen')} (pid {info.get('pid')} on {info.get('host')})"
            except ValueError:
                who = "another molgen process"
            raise MolgenError(f"{self.run_dir} is in use by {who}; wait for it to finish or choose another directory") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
