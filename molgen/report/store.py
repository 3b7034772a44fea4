"""Read-only access to a campaign's ``candidates.sqlite`` (see
:mod:`molgen.loops.store`): a report must never write to the run it
describes, and :class:`~molgen.loops.store.CandidateStore` creates tables
when it opens a file."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molgen.core.errors import MolgenError


@dataclass
class StoredCandidate:
    """One row of the ``candidates`` table."""

    call: int
    key: str
    text: str
    step: int
    total: float
    rejected_by: str | None
    reason: str | None
    components: dict[str, dict[str, float | None]]


class ReadOnlyStore:
    """A candidate store opened read-only.

    Args:
        path: ``candidates.sqlite``.

    Raises:
        MolgenError: the file cannot be read as a candidate store.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        uri = self.path.resolve().as_uri()
        # Without a -wal file every committed row is in the main file, and
        # "immutable" reads it without creating -wal/-shm files next to it; with
        # one (a live or killed run), a read-only connection reads the log too.
        wal = self.path.with_name(self.path.name + "-wal").exists()
        try:
            self.connection = sqlite3.connect(f"{uri}?mode=ro" if wal else f"{uri}?immutable=1", uri=True)
            tables = {row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise MolgenError(f"{self.path} is not a readable candidate store ({exc})") from None
        self.tables = tables

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "ReadOnlyStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def count(self) -> int:
        """Stored evaluations (0 when the table is missing)."""
        if "candidates" not in self.tables:
            return 0
        return self.connection.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]

    def best(self, limit: int) -> list[StoredCandidate]:
        """The ``limit`` best candidates, failures last (the store's own order)."""
        if "candidates" not in self.tables:
            return []
        rows = self.connection.execute(
            "SELECT call, key, text, step, total, rejected_by, reason, components FROM candidates "
            "ORDER BY total IS NULL, total DESC, call LIMIT ?", (int(limit),))
        return [_candidate(row) for row in rows]

    def by_keys(self, keys: list[str]) -> dict[str, StoredCandidate]:
        """Candidates of the given keys."""
        if "candidates" not in self.tables or not keys:
            return {}
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self.connection.execute(
                "SELECT call, key, text, step, total, rejected_by, reason, components FROM candidates "
                f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for row in rows:
                out[row[1]] = _candidate(row)
        return out

    def asks(self) -> list[dict[str, Any]]:
        """Rows of an ask/tell campaign's ``asks`` table in ask order (none when it has no such table)."""
        if "asks" not in self.tables:
            return []
        cursor = self.connection.execute("SELECT * FROM asks ORDER BY batch, rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def scores_by_call(self) -> tuple[list[int], list[float]]:
        """Oracle call numbers and totals (NaN for failures), in call order."""
        if "candidates" not in self.tables:
            return [], []
        rows = self.connection.execute("SELECT call, total FROM candidates ORDER BY call").fetchall()
        return [r[0] for r in rows], [math.nan if r[1] is None else float(r[1]) for r in rows]

    def steps(self) -> list[dict[str, Any]]:
        """Rows of the ``steps`` table (one per campaign step or discovery round)."""
        if "steps" not in self.tables:
            return []
        cursor = self.connection.execute("SELECT * FROM steps ORDER BY step")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]


def _candidate(row: tuple) -> StoredCandidate:
    try:
        components = json.loads(row[7]) if row[7] else {}
    except json.JSONDecodeError:
        components = {}
    return StoredCandidate(int(row[0]), row[1], row[2], int(row[3]), math.nan if row[4] is None else float(row[4]),
                           row[5], row[6], components)
