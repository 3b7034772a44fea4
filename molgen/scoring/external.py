"""A lab's own scoring tool as a component: JSON lines over stdin/stdout.

Protocol, once per batch: molgen starts ``command``, writes one line per
object, ``{"id": 0, "text": "CCO"}`` (SMILES for molecules, the sequence for
peptides, CIF for crystals), closes stdin and reads lines
``{"id": 0, "score": 0.73}`` or ``{"id": 0, "error": "why"}``. Missing ids,
bad lines, a crash, a non-zero exit or a timeout give NaN with the reason;
the run goes on.

What an answer may hold: an ``id`` that is an integer molgen sent (not
``1.0``, ``"1"`` or ``true``), answered once (a repeated id is a failure of
that object: which answer was meant is unknown), and a ``score`` that is a
finite JSON number (``true``, strings and ``1e999`` are failures with the
reason). The program runs in its own process group, and on a timeout the
whole group is killed (a shell script's children too); at most
``max_output_bytes`` of its output are read.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from typing import Any, Sequence

import numpy as np


def object_text(obj: Any) -> str:
    """Text handed to external tools: SMILES, a sequence, or CIF."""
    if isinstance(obj, str):
        return obj
    if hasattr(obj, "GetNumAtoms"):
        from rdkit import Chem

        return Chem.MolToSmiles(obj)
    if hasattr(obj, "lattice"):
        return obj.to(fmt="cif")
    return str(obj)


class ExternalCommand:
    """Component backed by an external program.

    Args:
        command: Program and arguments (a list, or a string split like a shell).
        name: Component name.
        timeout: Seconds per batch before the program (and its process
            group) is killed.
        batch_size: Objects per program start.
        max_output_bytes: Most bytes of the program's output read per batch.
    """

    def __init__(self, command: Sequence[str] | str, name: str = "external", timeout: float = 60.0, batch_size: int = 256,
                 max_output_bytes: int = 16 * 2**20):
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command or not all(isinstance(part, str) and part for part in self.command):
            raise ValueError("external component: the command must be a non-empty list of non-empty strings")
        self.name = name
        self.timeout = timeout
        self.batch_size = batch_size
        self.max_output_bytes = max_output_bytes

    def __call__(self, objs: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """Score ``objs`` (None entries are invalid objects)."""
        values = np.full(len(objs), np.nan)
        reasons: list[str | None] = ["invalid object" if o is None else None for o in objs]
        todo = [i for i, o in enumerate(objs) if o is not None]
        for start in range(0, len(todo), self.batch_size):
            self._run([(i, objs[i]) for i in todo[start : start + self.batch_size]], values, reasons)
        return values, reasons

    def _run(self, items: list[tuple[int, Any]], values: np.ndarray, reasons: list[str | None]) -> None:
        payload = "".join(json.dumps({"id": i, "text": object_text(o)}) + "\n" for i, o in items)
        ids = {i for i, _ in items}

        def fail_all(reason: str) -> None:
            for i in ids:
                if np.isnan(values[i]) and reasons[i] is None:
                    reasons[i] = f"{self.name}: {reason}"

        try:
            returncode, stdout, stderr = self._call(payload)
        except subprocess.TimeoutExpired:
            return fail_all(f"timed out after {self.timeout:g} s")
        except OSError as exc:
            return fail_all(f"could not start {self.command[0]!r}: {exc.strerror or exc}")
        seen: set[int] = set()
        for line in stdout.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                i = record["id"]
            except (ValueError, KeyError, TypeError):
                continue
            if type(i) is not int or i not in ids:  # bool is an int subclass: type() rules it out
                continue
            if i in seen:
                values[i] = np.nan
                reasons[i] = f"{self.name}: answered more than once"
                continue
            seen.add(i)
            if "error" in record:
                reasons[i] = f"{self.name}: {str(record['error'])[:200]}"
                continue
            value = record.get("score")
            if type(value) not in (int, float):
                reasons[i] = f"{self.name}: no numeric score in {line.strip()[:80]!r}"
                continue
            if np.isfinite(value):
                values[i] = float(value)
            else:
                reasons[i] = f"{self.name}: non-finite score {value}"
        if returncode != 0:
            tail = (stderr.strip().splitlines() or ["no message"])[-1][:200]
            fail_all(f"exited with code {returncode} ({tail})")
        else:
            fail_all("no result returned")

    def _call(self, payload: str) -> tuple[int, str, str]:
        """Run the program on ``payload``; ``(exit code, stdout, stderr)``.

        Raises:
            subprocess.TimeoutExpired: after the whole process group was killed.
            OSError: the program could not start.
        """
        import tempfile

        # Output goes to files, read back capped: a flood of output costs disk for a moment, never memory.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=out, stderr=err, start_new_session=True)
            try:
                try:
                    proc.communicate(payload.encode(), timeout=self.timeout)
                except BrokenPipeError:  # the program exited without reading all its input
                    proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise
            except BaseException:  # Ctrl-C or SIGTERM of molgen: leave no scorer behind
                _kill_group(proc)
                raise
            return proc.returncode, self._read(out), self._read(err)

    def _read(self, handle) -> str:
        handle.seek(0)
        return handle.read(self.max_output_bytes).decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and every process of its group, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
