"""A lab's own scoring tool as a component: JSON lines over stdin/stdout.

Protocol, once per batch: molgen starts ``command``, writes one line per
object, ``{"id": 0, "text": "CCO"}`` (SMILES for molecules, the sequence for
peptides, CIF for crystals), closes stdin and reads lines
``{"id": 0, "score": 0.73}`` or ``{"id": 0, "error": "why"}``. Missing ids,
bad lines, a crash, a non-zero exit or a timeout give NaN with the reason;
the run goes on.
"""

from __future__ import annotations

import json
import shlex
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
        timeout: Seconds per batch before the program is killed.
        batch_size: Objects per program start.
    """

    def __init__(self, command: Sequence[str] | str, name: str = "external", timeout: float = 60.0, batch_size: int = 256):
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command:
            raise ValueError("external component: empty command")
        self.name = name
        self.timeout = timeout
        self.batch_size = batch_size

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
            proc = subprocess.run(self.command, input=payload, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return fail_all(f"timed out after {self.timeout:g} s")
        except OSError as exc:
            return fail_all(f"could not start {self.command[0]!r}: {exc.strerror or exc}")
        for line in proc.stdout.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                i = int(record["id"])
            except (ValueError, KeyError, TypeError):
                continue
            if i not in ids:
                continue
            if "error" in record:
                reasons[i] = f"{self.name}: {record['error']}"
                continue
            try:
                value = float(record["score"])
            except (KeyError, TypeError, ValueError):
                reasons[i] = f"{self.name}: no numeric score in {line.strip()[:80]!r}"
                continue
            if np.isfinite(value):
                values[i] = value
            else:
                reasons[i] = f"{self.name}: non-finite score {value}"
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no message"])[-1][:200]
            fail_all(f"exited with code {proc.returncode} ({tail})")
        else:
            fail_all("no result returned")
