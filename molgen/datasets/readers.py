"""Streaming readers for files of objects (``.smi``, ``.txt``, ``.csv``,
``.tsv``, FASTA and SD files, optionally gzipped), with seeded subsampling
and the identifiers (names, id columns) that labs key their compounds by."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from molgen.core.errors import DataError


@dataclass(frozen=True)
class Record:
    """One object's text and where it came from (for error messages).

    Attributes:
        text: The object's text (an SD record's SMILES; empty when the
            record could not be read).
        line: Source line, or the 1-based record number of an SD file.
        fields: Extra CSV columns, or an SD record's properties.
        name: The record's own name: the second field of a ``.smi`` line,
            an SD record's title, a FASTA header (None when absent).
        error: Why the record could not be read (an SD record RDKit
            rejects); such a record is an invalid entry, never skipped
            silently.
    """

    text: str
    line: int
    fields: dict[str, str] | None = None
    name: str | None = None
    error: str | None = None

    def where(self, path: Path) -> str:
        """``path:line``, or ``path record N`` for SD files (for messages)."""
        return f"{path} record {self.line}" if _is_sdf(path) else f"{path}:{self.line}"


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark that would otherwise stick to the first header.
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


#: Longest record read, in characters (one SMILES, sequence or CIF). A longer
#: one is an invalid entry with the reason, never parsed: a 1 MB SMILES line
#: would cost gigabytes in RDKit and the featurisers. MOLGEN_MAX_RECORD_CHARS
#: raises the limit for the rare user who needs it.
MAX_RECORD_CHARS = int(os.environ.get("MOLGEN_MAX_RECORD_CHARS", "100000"))
#: Longest single-line record (SMILES, SELFIES, a sequence): 20,000
#: characters is ~2,000 heavy atoms or a large protein.
MAX_LINE_RECORD_CHARS = min(20_000, MAX_RECORD_CHARS)
#: CSV columns read as the objects when none is named, in this order.
TEXT_COLUMNS = ("smiles", "canonical_smiles", "smi", "mol", "sequence", "seq", "cif", "text", "selfies")


def _bounded(record: "Record", limit: int) -> "Record":
    """``record``, or an invalid entry saying it is too long."""
    if len(record.text) <= limit:
        return record
    return Record("", record.line, record.fields, record.name,
                  error=f"entry of {len(record.text):,} characters is longer than the limit of {limit:,} "
                        "(MOLGEN_MAX_RECORD_CHARS)")


FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas")
SMILES_SUFFIXES = (".smi", ".smiles", ".txt")
CSV_SUFFIXES = (".csv", ".tsv")
SDF_SUFFIXES = (".sdf", ".sd")
#: Every suffix :func:`detect_format` knows (each also with ``.gz``).
INPUT_SUFFIXES = SMILES_SUFFIXES + CSV_SUFFIXES + SDF_SUFFIXES + FASTA_SUFFIXES
#: Column names (case-insensitive) taken as the identifier when none is named.
ID_COLUMNS = ("id", "name", "compound_id")


def file_suffix(path: str | Path) -> str:
    """The lower-case suffix that names a file's format, ``.gz`` looked
    through (``x.sdf.gz`` -> ``.sdf``); ``""`` when there is none."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def require_output_suffix(path: str | Path, known: Sequence[str], what: str = "output") -> None:
    """Refuse an output file whose suffix is not one of ``known`` (checked
    before any work is done, so a typo costs nothing).

    Raises:
        DataError: naming the suffix and listing the known ones.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in known:
        raise DataError(f"{path}: unsupported {what} format {suffix or '(none)'!r}; known: {', '.join(known)}")


def _is_sdf(path: Path) -> bool:
    return file_suffix(path) in SDF_SUFFIXES


def detect_format(path: Path) -> str:
    """``"csv"`` for ``.csv``/``.tsv``, ``"fasta"`` for ``.fasta``/``.fa``/
    ``.faa``/``.fas``, ``"sdf"`` for ``.sdf``/``.sd``, ``"smi"`` for ``.smi``/
    ``.smiles``/``.txt`` and files without a suffix (each optionally ``.gz``).

    Raises:
        DataError: any other suffix (``.xlsx``, ``.parquet``...), listing
            the known ones: reading it as SMILES lines would silently
            produce garbage.
    """
    suffix = file_suffix(path)
    if suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in SDF_SUFFIXES:
        return "sdf"
    if suffix in SMILES_SUFFIXES or suffix == "":
        return "smi"
    raise DataError(f"{path}: unsupported input format {suffix!r}; known: {', '.join(INPUT_SUFFIXES)} (each optionally .gz)")


def iter_records(
    path: Path,
    fmt: str | None = None,
    column: str | None = None,
    extra_columns: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> Iterator[Record]:
    """Yield the objects of a file one at a time.

    ``smi``/``txt``: the first whitespace-separated field of each non-blank,
    non-``#`` line (the rest of the line is the record's ``name``); a first
    line whose field is ``smiles`` is a header.
    ``csv``: the column named ``column`` (case-insensitive; default: a column
    named ``smiles``, ``sequence``, ``cif`` or ``text``, else the first).
    ``sdf``: one record per molecule, read by RDKit's supplier; the text is
    its SMILES, ``fields`` its properties, ``name`` its title, and a record
    RDKit cannot read is yielded with ``error`` set (see
    :func:`molgen.datasets.sdf.iter_sdf`).

    Args:
        path: The file.
        fmt: ``"csv"``, ``"smi"``, ``"fasta"`` or ``"sdf"``; detected from
            the suffix when None.
        column: CSV column name.
        extra_columns: CSV columns (SD properties) copied into ``Record.fields``.
        column_names: Names replacing the CSV's own header row (for files
            whose first row is not a usable header).

    ``fasta``: one record per ``>`` header, wrapped sequence lines joined; the
    header goes to ``fields["header"]`` and ``line`` is the header's line.

    Raises:
        DataError: unreadable file, unknown suffix or missing column.
    """
    fmt = fmt or detect_format(path)
    if fmt == "sdf":
        from molgen.datasets.sdf import iter_sdf

        yield from iter_sdf(path, extra_columns)
        return
    try:
        with _open_text(path) as handle:
            if fmt == "csv":
                for record in _iter_csv(handle, path, column, extra_columns, column_names):
                    yield _bounded(record, MAX_RECORD_CHARS if "\n" in record.text else MAX_LINE_RECORD_CHARS)
            elif fmt == "fasta":
                for record in _iter_fasta(handle, path):
                    yield _bounded(record, MAX_LINE_RECORD_CHARS)
            else:
                for number, line in enumerate(handle, start=1):
                    if len(line) > MAX_LINE_RECORD_CHARS:  # never split a huge line into fields
                        yield _bounded(Record(line.strip(), number), MAX_LINE_RECORD_CHARS)
                        continue
                    fields = line.split()
                    if not fields or fields[0].startswith("#"):
                        continue
                    if number == 1 and fields[0].lower() in ("smiles", "sequence"):
                        continue
                    rest = line.strip().split(None, 1)
                    yield Record(fields[0], number, name=rest[1].strip() if len(rest) > 1 else None)
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
                yield Record("".join(parts), start, {"header": header}, name=header or None)
            header, start, parts = line[1:].strip(), number, []
        elif header is None:
            raise DataError(f"{path}:{number}: sequence line before the first '>' header (is this a FASTA file?)")
        else:
            parts.append(line.replace(" ", ""))
    if header is not None:
        yield Record("".join(parts), start, {"header": header}, name=header or None)


def _csv_reader(handle: io.TextIOBase):
    sample = handle.read(4096)
    handle.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    return csv.reader(handle, delimiter=delimiter)


def csv_columns(path: Path) -> list[str]:
    """The header row of a CSV/TSV file (empty for an empty file).

    Raises:
        DataError: unreadable file.
    """
    try:
        with _open_text(Path(path)) as handle:
            return [h.strip() for h in next(_csv_reader(handle), [])]
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _iter_csv(
    handle: io.TextIOBase,
    path: Path,
    column: str | None,
    extra_columns: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> Iterator[Record]:
    reader = _csv_reader(handle)
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
        index = next((lowered.index(c) for c in TEXT_COLUMNS if c in lowered), None)
        if index is None:
            if len(header) > 1:  # guessing the first of several columns scores the wrong thing silently
                raise DataError(f"{path}: no column of objects found (looked for {', '.join(TEXT_COLUMNS)}); "
                                f"columns are {', '.join(header)}")
            index = 0
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


@dataclass
class LabeledRecords:
    """The records of a user's file with one identifier each.

    Attributes:
        records: The records, in file order (SD records RDKit rejects
            included, with ``error`` set).
        ids: One identifier per record (``""`` where a record has none);
            None when the file carries no identifiers.
        id_name: Header for the identifiers in an output table: the source
            column or SD property, else ``"id"`` (None with ``ids``).
    """

    records: list[Record]
    ids: list[str] | None
    id_name: str | None


def read_labeled(path: str | Path, id_column: str | None = None) -> LabeledRecords:
    """Read a file of objects with each one's identifier.

    The identifier is the column (or SD property) ``id_column``; by default
    a column named ``id``, ``name`` or ``compound_id`` (case-insensitive) of
    a CSV, the name field of a ``.smi`` line (``SMILES<whitespace>name``),
    the title of an SD record (else an id-like SD property such as ``ID`` or
    ``Catalog_ID``), or a FASTA header. Duplicate and empty identifiers are
    kept as they are.

    Args:
        path: The file.
        id_column: Identifier column; for ``.smi`` files ``name`` (the
            second field), for SD files a property or ``_Name`` (the title).

    Returns:
        Records, identifiers and the identifiers' header.

    Raises:
        DataError: unreadable, empty or unknown file, or an ``id_column``
            the file lacks (the message lists what it has).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "csv":
        wanted = _csv_id_column(path, id_column)
        records = read_records(path, extra_columns=(wanted,) if wanted else ())
        ids = [r.fields[wanted] for r in records] if wanted else None
        return LabeledRecords(records, ids, wanted)
    records = read_records(path)
    if fmt == "sdf":
        return _sdf_ids(path, records, id_column)
    own = {"smi": ("smiles", "name"), "fasta": ("sequence", "header")}[fmt]
    if id_column is not None and id_column.lower() != own[1]:
        raise DataError(f"--id-column {id_column!r}: {path} has no such column; its columns are {', '.join(own)}")
    if id_column is None and not any(r.name for r in records):
        return LabeledRecords(records, None, None)
    return LabeledRecords(records, [r.name or "" for r in records], own[1] if id_column else "id")


#: Records an identifier-less ``.smi``/SD file is looked at to decide whether
#: it carries identifiers, when it is streamed.
PEEK_RECORDS = 4096


@dataclass
class LabeledStream:
    """The records of a user's file with their identifiers, read lazily.

    Iterating yields ``(record, identifier)`` pairs (identifier ``None`` when
    the file carries none); memory does not grow with the file.

    Attributes:
        id_name: Header for the identifiers (see :class:`LabeledRecords`);
            None when the file carries none.
    """

    id_name: str | None
    _pairs: Iterator[tuple[Record, str | None]]

    @property
    def has_ids(self) -> bool:
        """Whether the file carries identifiers."""
        return self.id_name is not None

    def __iter__(self) -> Iterator[tuple[Record, str | None]]:
        return self._pairs


def iter_labeled(path: str | Path, id_column: str | None = None) -> LabeledStream:
    """Stream a file of objects with each one's identifier.

    The same identifiers as :func:`read_labeled`, without holding the file:
    a CSV's header names its identifier column; for ``.smi``, FASTA and SD
    files without an ``id_column`` the first :data:`PEEK_RECORDS` records
    decide whether the file carries names (titles, id-like SD properties).

    Args:
        path: The file.
        id_column: Identifier column (see :func:`read_labeled`).

    Returns:
        The stream (iterate it once).

    Raises:
        DataError: missing, unreadable, empty or unknown file, or an
            ``id_column`` the file lacks.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a data file")
    fmt = detect_format(path)
    if fmt == "csv":
        wanted = _csv_id_column(path, id_column)
        records = iter_records(path, extra_columns=(wanted,) if wanted else ())
        head = list(itertools.islice(records, 1))
        if not head:
            raise DataError(f"{path} holds no entries")
        pairs = ((r, r.fields[wanted] if wanted else None) for r in itertools.chain(head, records))
        return LabeledStream(wanted, pairs)
    records = iter_records(path)
    head = list(itertools.islice(records, PEEK_RECORDS))
    if not head:
        raise DataError(f"{path} holds no entries")
    rest = itertools.chain(head, records)
    if fmt == "sdf":
        header, source = _sdf_id_source(path, head, id_column)
        return LabeledStream(header, ((r, None if header is None else _sdf_id(r, source)) for r in rest))
    own = {"smi": ("smiles", "name"), "fasta": ("sequence", "header")}[fmt]
    if id_column is not None and id_column.lower() != own[1]:
        raise DataError(f"--id-column {id_column!r}: {path} has no such column; its columns are {', '.join(own)}")
    if id_column is None and not any(r.name for r in head):
        return LabeledStream(None, ((r, None) for r in rest))
    return LabeledStream(own[1] if id_column else "id", ((r, r.name or "") for r in rest))


def _csv_id_column(path: Path, id_column: str | None) -> str | None:
    """The header spelling of the CSV's identifier column (None: none)."""
    columns = csv_columns(path)
    lowered = [c.lower() for c in columns]
    if id_column is not None:
        if id_column.strip().lower() not in lowered:
            raise DataError(f"--id-column {id_column!r}: {path} has no such column; its columns are {', '.join(columns)}")
        return columns[lowered.index(id_column.strip().lower())]
    return next((columns[lowered.index(c)] for c in ID_COLUMNS if c in lowered), None)


def _sdf_id_source(path: Path, records: Sequence[Record], id_column: str | None) -> tuple[str | None, str | None]:
    """Where an SD file's identifiers come from: ``(header, property)``;
    property None means the title, header None means no identifiers."""
    from molgen.datasets.sdf import TITLE, id_like_property

    properties = list(dict.fromkeys(name for r in records for name in (r.fields or {})))
    if id_column is not None:
        if id_column.lower() in (TITLE.lower(), "title"):
            return "id", None
        match = next((p for p in properties if p.lower() == id_column.strip().lower()), None)
        if match is None:
            raise DataError(f"--id-column {id_column!r}: {path} has no such SD property; its fields are {', '.join([TITLE, *properties])}")
        return match, match
    if any(r.name for r in records):
        return "id", None
    match = id_like_property(properties)
    return (None, None) if match is None else (match, match)


def _sdf_id(record: Record, source: str | None) -> str:
    return (record.name or "") if source is None else (record.fields or {}).get(source, "")


def _sdf_ids(path: Path, records: list[Record], id_column: str | None) -> LabeledRecords:
    header, source = _sdf_id_source(path, records, id_column)
    if header is None:
        return LabeledRecords(records, None, None)
    return LabeledRecords(records, [_sdf_id(r, source) for r in records], header)