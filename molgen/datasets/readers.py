"""Streaming readers for one-object-per-line files (``.smi``, ``.txt``,
``.csv``, optionally gzipped), with seeded subsampling."""

from __future__ import annotations

import csv
import gzip
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from molgen.core.errors import DataError


@dataclass(frozen=True)
class Record:
    """One object's text and where it came from (for error messages)."""

    text: str
    line: int
    fields: dict[str, str] | None = None


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas")


def detect_format(path: Path) -> str:
    """``"csv"`` for ``.csv``/``.tsv``, ``"fasta"`` for ``.fasta``/``.fa``/``.faa``
    (optionally ``.gz``), else ``"smi"``."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in FASTA_SUFFIXES:
        return "fasta"
    return "csv" if suffixes and suffixes[-1] in (".csv", ".tsv") else "smi"


def iter_records(
    path: Path,
    fmt: str | None = None,
    column: str | None = None,
    extra_columns: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> Iterator[Record]:
    """Yield the objects of a file one at a time.

    ``smi``/``txt``: the first whitespace-separated field of each non-blank,
    non-``#`` line; a first line whose field is ``smiles`` is a header.
    ``csv``: the column named ``column`` (case-insensitive; default: a column
    named ``smiles``, ``sequence``, ``cif`` or ``text``, else the first).

    Args:
        path: The file.
        fmt: ``"csv"`` or ``"smi"``; detected from the suffix when None.
        column: CSV column name.
        extra_columns: CSV columns copied into ``Record.fields``.
        column_names: Names replacing the CSV's own header row (for files
            whose first row is not a usable header).

    ``fasta``: one record per ``>`` header, wrapped sequence lines joined; the
    header goes to ``fields["header"]`` and ``line`` is the header's line.

    Raises:
        DataError: unreadable file or missing column.
    """
    fmt = fmt or detect_format(path)
    try:
        with _open_text(path) as handle:
            if fmt == "csv":
                yield from _iter_csv(handle, path, column, extra_columns, column_names)
            elif fmt == "fasta":
                yield from _iter_fasta(handle, path)
            else:
                for number, line in enumerate(handle, start=1):
                    fields = line.split()
                    if not fields or fields[0].startswith("#"):
                        continue
                    if number == 1 and fields[0].lower() in ("smiles", "sequence"):
                        continue
                    yield Record(fields[0], number)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _iter_fasta(handle: io.TextIOBase, path: Path) -> Iterator[Record]:
    header, start, parts = None, 0, []
    for number, line in enumerate(handle, start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if header is not None:
                yield Record("".join(parts), start, {"header": header})
            header, start, parts = line[1:].strip(), number, []
        elif header is None:
            raise DataError(f"{path}:{number}: sequence line before the first '>' header (is this a FASTA file?)")
        else:
            parts.append(line.replace(" ", ""))
    if header is not None:
        yield Record("".join(parts), start, {"header": header})


def _iter_csv(
    handle: io.TextIOBase,
    path: Path,
    column: str | None,
    extra_columns: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> Iterator[Record]:
    sample = handle.read(4096)
    handle.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    if column_names is not None:
        header = list(column_names)
    lowered = [h.strip().lower() for h in header]
    if column is not None:
        if column.lower() not in lowered:
            raise DataError(f"{path}: no column {column!r}; columns are {', '.join(header)}")
        index = lowered.index(column.lower())
    else:
        index = next((lowered.index(c) for c in ("smiles", "sequence", "cif", "text") if c in lowered), 0)
    extra = {}
    for name in extra_columns:
        if name.lower() not in lowered:
            raise DataError(f"{path}: no column {name!r}; columns are {', '.join(header)}")
        extra[name] = lowered.index(name.lower())
    # Rows are counted, not lines: a quoted CIF spans many lines.
    for number, row in enumerate(reader, start=2):
        if len(row) > index and row[index].strip():
            fields = {name: row[i].strip() if i < len(row) else "" for name, i in extra.items()} if extra else None
            yield Record(row[index].strip(), number, fields)


def read_records(
    path: Path,
    fmt: str | None = None,
    column: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    keep: Sequence[int] | None = None,
    extra_columns: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> list[Record]:
    """Read a file, keeping at most ``limit`` records.

    With a limit, a seeded uniform random subset is kept by reservoir
    sampling while streaming, so a 1.6M-line file never sits in memory when
    50k lines are wanted. The subset keeps file order.

    Args:
        path: The file.
        fmt: Format, detected when None.
        column: CSV column.
        limit: Maximum number of records; None keeps all.
        seed: Seed of the subset.
        keep: Only these 0-based record positions (a data set split), applied
            before ``limit``.
        extra_columns: CSV columns copied into each record's ``fields``.
        column_names: Names replacing the CSV's header row.

    Returns:
        The records.

    Raises:
        DataError: missing or empty file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a data file")
    if limit is not None and limit <= 0:
        raise DataError(f"limit must be positive, got {limit}")
    records = iter_records(path, fmt, column, extra_columns, column_names)
    if keep is not None:
        wanted = set(int(i) for i in keep)
        records = (r for i, r in enumerate(records) if i in wanted)
    if limit is None:
        kept = list(records)
    else:
        kept = _reservoir(records, limit, random.Random(seed))
    if not kept:
        raise DataError(f"{path} holds no entries")
    return kept


def _reservoir(records: Iterator[Record], k: int, rng: random.Random) -> list[Record]:
    reservoir: list[Record] = []
    for i, record in enumerate(records):
        if i < k:
            reservoir.append(record)
        else:
            j = rng.randrange(i + 1)
            if j < k:
                reservoir[j] = record
    reservoir.sort(key=lambda r: r.line)
    return reservoir
