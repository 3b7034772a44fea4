"""The candidate store: every scored object of a campaign in one SQLite file.

Each oracle batch is written in one transaction right after it is scored, so
a run killed at any moment (SIGKILL included) keeps every evaluation it
committed, and a resumed run finds them again (they are neither re-scored nor
counted twice against the budget). The ``call`` column is the 1-based order of
the oracle call, the unit of the PMO budget.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from molgen.core.errors import MolgenError
from molgen.core.serialization import atomic_open, dumps_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    call INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    step INTEGER NOT NULL,
    total REAL,
    reason TEXT,
    rejected_by TEXT,
    components TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS candidates_total ON candidates (total);
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY,
    sampled INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    new_calls INTEGER NOT NULL,
    mean_reward REAL,
    loss REAL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS followups (
    key TEXT NOT NULL,
    oracle TEXT NOT NULL,
    step INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    result TEXT NOT NULL,
    seconds REAL,
    created REAL NOT NULL,
    PRIMARY KEY (key, oracle)
);
CREATE TABLE IF NOT EXISTS asks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    batch INTEGER NOT NULL,
    request TEXT,
    mean REAL,
    std REAL,
    cheap REAL,
    why TEXT NOT NULL,
    status TEXT NOT NULL,
    value REAL,
    error TEXT,
    asked REAL NOT NULL,
    told REAL
);
CREATE INDEX IF NOT EXISTS asks_status ON asks (status);
"""

#: States of an asked candidate: waiting for the lab, measured, or the measurement failed.
ASK_STATES = ("pending", "measured", "failed")


@dataclass
class Candidate:
    """One stored evaluation.

    Attributes:
        call: 1-based oracle call number.
        key: Canonical key (unique in the store).
        text: The object's text as generated (a SMILES for molecules).
        step: Campaign step that proposed it.
        total: Objective value (NaN when it failed).
        reason: Why it failed, else None.
        rejected_by: The filter that rejected it, else None.
        components: ``{name: {"raw": x, "value": y}}`` (NaN as None).
        created: Unix time of the write.
    """

    call: int
    key: str
    text: str
    step: int
    total: float
    reason: str | None
    rejected_by: str | None
    components: dict[str, dict[str, float | None]]
    created: float


@dataclass
class StepTotals:
    """Sums over a campaign's recorded steps.

    Attributes:
        steps: Steps recorded.
        sampled: Proposals made.
        valid: Proposals that parsed.
        seconds: Wall time of the steps.
    """

    steps: int
    sampled: int
    valid: int
    seconds: float


@dataclass
class AskRecord:
    """One candidate asked of the lab (a row of the ``asks`` table).

    Attributes:
        id: The campaign's id for it (what the lab reports back).
        key: Canonical key (unique: nothing is asked twice).
        text: The object's text.
        batch: 1-based number of the ask that proposed it.
        request: The client's request id of that ask, if it gave one.
        mean: Surrogate mean at ask time (None before the surrogate is used).
        std: Surrogate std at ask time.
        cheap: The cheap fidelity's score (the objective's total), if any.
        why: Why it was chosen, in words.
        status: ``pending``, ``measured`` or ``failed``.
        value: The measured value.
        error: Why the measurement failed.
        asked: Unix time of the ask.
        told: Unix time of the answer.
    """

    id: str
    key: str
    text: str
    batch: int
    request: str | None
    mean: float | None
    std: float | None
    cheap: float | None
    why: str
    status: str
    value: float | None
    error: str | None
    asked: float
    told: float | None


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _candidate(row: tuple) -> Candidate:
    return Candidate(row[0], row[1], row[2], row[3], np.nan if row[4] is None else row[4], row[5], row[6], json.loads(row[7]), row[8])


class CandidateStore:
    """SQLite store of a campaign's evaluations (WAL journal, synchronous
    commits, one transaction per oracle batch).

    Args:
        path: Database file (created with its tables when missing).

    Raises:
        MolgenError: the file exists but is not a molgen store.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # check_same_thread off: a server hands requests to worker threads and serialises them itself.
            self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise MolgenError(f"{self.path} is not a usable candidate store ({exc})") from None

    # -- writing ------------------------------------------------------------
    def add_scored(self, step: int, keys: Sequence[str], texts: Sequence[str], table) -> list[int]:
        """Write one oracle batch in a single transaction.

        Args:
            step: Campaign step.
            keys: Canonical keys of the evaluated objects.
            texts: Their texts.
            table: The :class:`~molgen.scoring.objective.ScoreTable` of the batch.

        Returns:
            The call numbers given to the rows.
        """
        now = time.time()
        first = self.count() + 1
        rows = []
        for i, (key, text) in enumerate(zip(keys, texts)):
            components = {
                name: {"raw": _number(table.raw[name][i]), "value": _number(table.transformed[name][i]) if name in table.transformed else None}
                for name in table.raw
            }
            reason = table.reasons[i] if table.reasons else None
            rejected = table.rejected_by[i] if table.rejected_by else None
            rows.append((first + i, key, text, step, _number(table.total[i]), reason, rejected, dumps_json(components), now))
        with self._transaction():
            self.connection.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return [r[0] for r in rows]

    def log_step(self, step: int, sampled: int, valid: int, new_calls: int, mean_reward: float, loss: float | None, seconds: float) -> None:
        """Record one campaign step (replacing an earlier record of the same step)."""
        with self._transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (step, sampled, valid, new_calls, _number(mean_reward), None if loss is None else _number(loss), seconds, time.time()),
            )

    def add_followup(self, key: str, oracle: str, step: int, status: str, error: str | None, result: dict, seconds: float | None) -> None:
        """Store one expensive follow-up evaluation (e.g. a relaxation) of a
        stored candidate, committed on its own so that a killed run keeps it.

        Args:
            key: The candidate's key.
            oracle: Which follow-up oracle (``chgnet``).
            step: Campaign step or discovery round.
            status: ``ok``, ``failed``, ... (the oracle's vocabulary).
            error: Why it failed, else None.
            result: JSON-ready values.
            seconds: Wall time of the call.
        """
        with self._transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO followups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, oracle, step, status, error, dumps_json(result), seconds, time.time()),
            )

    def followups(self, oracle: str) -> dict[str, dict[str, Any]]:
        """Stored follow-ups of ``oracle``: key -> ``{"step", "status", "error", "result", "seconds"}``."""
        rows = self.connection.execute(
            "SELECT key, step, status, error, result, seconds FROM followups WHERE oracle = ? ORDER BY created", (oracle,))
        return {k: {"step": st, "status": status, "error": err, "result": json.loads(res), "seconds": sec}
                for k, st, status, err, res, sec in rows}

    def _transaction(self):
        store = self

        class _Tx:
            def __enter__(self):
                store.connection.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                store.connection.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    # -- ask/tell -----------------------------------------------------------
    def add_asks(self, records: Sequence[AskRecord]) -> None:
        """Store a batch of asked candidates in one transaction (all pending)."""
        rows = [(r.id, r.key, r.text, r.batch, r.request, r.mean, r.std, r.cheap, r.why, "pending", None, None, r.asked, None)
                for r in records]
        with self._transaction():
            self.connection.executemany("INSERT INTO asks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def asks(self, status: str | None = None, batch: int | None = None, request: str | None = None,
             ids: Sequence[str] | None = None) -> list[AskRecord]:
        """Asked candidates in ask order, optionally only those of one status,
        batch, request id or set of ids."""
        where, args = [], []
        for column, value in (("status", status), ("batch", batch), ("request", request)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM asks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = [AskRecord(*row) for row in self.connection.execute(sql + " ORDER BY batch, rowid", args)]
        if ids is not None:
            wanted = set(ids)
            rows = [r for r in rows if r.id in wanted]
        return rows

    def asked_keys(self) -> set[str]:
        """Canonical keys of every candidate ever asked."""
        return {k for (k,) in self.connection.execute("SELECT key FROM asks")}

    def ask_counts(self) -> dict[str, int]:
        """Number of asked candidates per status (every state present, 0 when none)."""
        counts = dict.fromkeys(ASK_STATES, 0)
        counts.update(dict(self.connection.execute("SELECT status, COUNT(*) FROM asks GROUP BY status")))
        return counts

    def last_batch(self) -> int:
        """Number of the newest ask (0 before the first)."""
        return self.connection.execute("SELECT COALESCE(MAX(batch), 0) FROM asks").fetchone()[0]

    def record_answers(self, answers: Sequence[tuple[AskRecord, float | None, str | None]]) -> None:
        """Record lab answers in one transaction: each asked row gets its
        value (or failure) and a row in ``candidates`` (the call number is the
        order of the answers, ``step`` the batch, the measured value the total).

        Args:
            answers: ``(pending ask, value, error)`` with exactly one of value/error.
        """
        now = time.time()
        with self._transaction():
            first = self.count() + 1
            for i, (ask, value, error) in enumerate(answers):
                status = "failed" if value is None else "measured"
                self.connection.execute("UPDATE asks SET status = ?, value = ?, error = ?, told = ? WHERE id = ? AND status = 'pending'",
                                        (status, value, error, now, ask.id))
                components = {"measured": {"raw": value, "value": value}}
                if ask.cheap is not None:
                    components["cheap"] = {"raw": ask.cheap, "value": ask.cheap}
                self.connection.execute("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                        (first + i, ask.key, ask.text, ask.batch, value, error, None, dumps_json(components), now))

    # -- reading ------------------------------------------------------------
    def count(self) -> int:
        """Number of stored evaluations (oracle calls spent)."""
        return self.connection.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]

    def last_step(self) -> int:
        """The highest step with a stored candidate or step record (0 if none)."""
        a = self.connection.execute("SELECT MAX(step) FROM candidates").fetchone()[0]
        b = self.connection.execute("SELECT MAX(step) FROM steps").fetchone()[0]
        return max(a or 0, b or 0)

    def candidates(self, order: str = "call", limit: int | None = None) -> Iterator[Candidate]:
        """Stored evaluations by call order (``order="call"``) or best total
        first (``order="score"``, failures last)."""
        sql = "SELECT * FROM candidates ORDER BY " + ("call" if order == "call" else "total IS NULL, total DESC, call")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.connection.execute(sql):
            yield _candidate(row)

    def candidates_of_step(self, step: int) -> Iterator[Candidate]:
        """Evaluations first made at ``step`` (a campaign step or discovery round), in call order."""
        for row in self.connection.execute("SELECT * FROM candidates WHERE step = ? ORDER BY call", (step,)):
            yield _candidate(row)

    def passed_of_step(self, step: int, min_score: float) -> list[Candidate]:
        """Evaluations first made at ``step`` that passed every filter and
        scored above ``min_score``, best first (ties by call order)."""
        return self._passed("step = ?", step, min_score)

    def passed_until(self, step: int, min_score: float) -> list[Candidate]:
        """As :meth:`passed_of_step`, over every step up to ``step``."""
        return self._passed("step <= ?", step, min_score)

    def _passed(self, step_clause: str, step: int, min_score: float) -> list[Candidate]:
        rows = self.connection.execute(
            f"SELECT * FROM candidates WHERE {step_clause} AND rejected_by IS NULL AND total IS NOT NULL AND total > ? "
            "ORDER BY total DESC, call", (step, min_score))
        return [_candidate(row) for row in rows]

    def step_totals(self) -> StepTotals:
        """Sums over the recorded steps (see :meth:`log_step`)."""
        steps, sampled, valid, seconds = self.connection.execute(
            "SELECT COUNT(*), SUM(sampled), SUM(valid), SUM(seconds) FROM steps").fetchone()
        return StepTotals(steps, sampled or 0, valid or 0, seconds or 0.0)

    def evaluations(self) -> list[tuple[str, float]]:
        """``(key, total)`` in call order (NaN for failures), to restore an oracle."""
        return [(k, np.nan if t is None else t) for k, t in self.connection.execute("SELECT key, total FROM candidates ORDER BY call")]

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def __enter__(self) -> "CandidateStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- export -------------------------------------------------------------
    def export_csv(self, path: str | Path, top: int | None = None) -> Path:
        """Write the best ``top`` evaluations (all when None) as CSV: call,
        text, key, step, total, each component's raw and transformed value,
        rejected_by, reason."""
        rows = list(self.candidates(order="score", limit=top))
        names = sorted({name for c in rows for name in c.components})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def cell(value: float | None) -> str:
            return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"

        with atomic_open(path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "call", "text", "key", "step", "score", *(f"{n}_raw" for n in names), *names, "rejected_by", "reason"])
            for rank, c in enumerate(rows, 1):
                comp = [c.components.get(n, {}) for n in names]
                writer.writerow([
                    rank, c.call, c.text, c.key, c.step, cell(c.total), *(cell(v.get("raw")) for v in comp),
                    *(cell(v.get("value")) for v in comp), c.rejected_by or "", c.reason or "",
                ])
        return path

    def export_sdf(self, path: str | Path, top: int | None = None) -> Path:
        """Write the best ``top`` molecules as SDF with 2D coordinates and the
        score, call, step and component values as SD properties.

        Raises:
            MolgenError: the stored texts are not molecules.
        """
        from rdkit import Chem
        from rdkit.Chem import AllChem

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = Chem.SDWriter(str(path))
        try:
            for rank, c in enumerate(self.candidates(order="score", limit=top), 1):
                # The canonical key is SMILES for every molecule domain (SMILES, SELFIES, graphs).
                mol = Chem.MolFromSmiles(c.key)
                if mol is None:
                    raise MolgenError(f"{self.path}: call {c.call} ({c.key!r}) is not a SMILES; SDF export is for molecules")
                AllChem.Compute2DCoords(mol)
                mol.SetProp("_Name", f"rank{rank}_call{c.call}")
                mol.SetProp("smiles", c.key)
                mol.SetProp("score", "" if math.isnan(c.total) else f"{c.total:.6g}")
                mol.SetIntProp("call", c.call)
                mol.SetIntProp("step", c.step)
                for name, values in c.components.items():
                    if values.get("raw") is not None:
                        mol.SetProp(f"{name}_raw", f"{values['raw']:.6g}")
                    if values.get("value") is not None:
                        mol.SetProp(name, f"{values['value']:.6g}")
                writer.write(mol)
        finally:
            writer.close()
        return path
