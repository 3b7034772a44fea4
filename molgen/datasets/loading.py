"""Turn a data set name or a file path into validated object texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molgen.core.errors import DataError, ParseError, RegistryError
from molgen.core.registry import DATASETS
from molgen.datasets.readers import INPUT_SUFFIXES, iter_records, read_records
from molgen.datasets.registry import DatasetSpec, resolve_dataset_file
from molgen.datasets.splits import split_indices, stratified_split_indices
from molgen.domains.base import Domain

_FILE_SUFFIXES = (*INPUT_SUFFIXES, ".gz", ".cif", ".xyz")


@dataclass
class LoadedTexts:
    """Validated texts of one data source.

    Attributes:
        texts: Object texts (canonical when requested).
        lines: Source line (SD files: record number) of each text, for error messages.
        path: The file read.
        skipped: ``(line, reason)`` of entries skipped as invalid (SD
            files: record number, e.g. of a record RDKit cannot read).
        targets: Property columns of the data set, aligned with ``texts``
            (NaN where a value is missing).
        objects: The parsed objects, aligned with ``texts`` (only when asked
            for with ``keep_objects``).
    """

    texts: list[str]
    lines: list[int]
    path: Path
    skipped: list[tuple[int, str]] = field(default_factory=list)
    targets: dict[str, list[float]] = field(default_factory=dict)
    objects: list = field(default_factory=list)


#: Prefix that always means a registered data set, never a file.
DATA_PREFIX = "data:"


def resolve_source(source: str) -> tuple[Path, DatasetSpec | None]:
    """A data set name or a file path -> (local file, spec or None).

    A bare registered name that is also a file here is refused: which one
    was meant is unknown (``./NAME`` is the file, ``data:NAME`` the data set).

    Raises:
        DataError: a path-like source that does not exist, or an ambiguous name.
        RegistryError: neither a registered name nor an existing file.
    """
    if source.startswith(DATA_PREFIX):
        return resolve_dataset_file(DATASETS.get(source[len(DATA_PREFIX):])), DATASETS.get(source[len(DATA_PREFIX):])
    path = Path(source).expanduser()
    if source in DATASETS and path.exists() and "/" not in source:
        raise DataError(f"{source!r} is both a registered data set and a file here: write data:{source} for the "
                        f"data set or ./{source} for the file")
    if path.is_file():
        return path, None
    if source in DATASETS:
        spec = DATASETS.get(source)
        return resolve_dataset_file(spec), spec
    if path.exists():
        raise DataError(f"{path} is not a regular file")
    if "/" in source or "\\" in source or path.suffix.lower() in _FILE_SUFFIXES:
        raise DataError(f"file not found: {source}")
    try:
        DATASETS.get(source)
    except RegistryError as exc:
        raise RegistryError(f"{exc} (and no file named {source!r} exists)") from None
    raise AssertionError("unreachable")


def load_texts(
    source: str,
    domain: Domain,
    *,
    limit: int | None = None,
    seed: int = 0,
    on_invalid: str | None = None,
    canonicalize: bool = False,
    targets: tuple[str, ...] | None = None,
    keep_objects: bool = False,
) -> LoadedTexts:
    """Read, subsample and validate the objects of a data set or file.

    Args:
        source: Registered data set name or a path (``.smi``, ``.csv``,
            ``.sdf``, ...; SD properties serve as ``targets``).
        domain: Domain used to validate (and canonicalize) each entry.
        limit: Keep a seeded random subset of at most this many entries.
        seed: Seed of the subset.
        on_invalid: ``"error"`` (stop at the first invalid entry, naming its
            line) or ``"skip"``; default: the data set's own policy, else
            ``"error"``.
        canonicalize: Replace each text by the domain's canonical text.
        targets: Property columns to read (default: the data set's targets;
            none for a plain file).
        keep_objects: Also return the parsed objects (saves parsing twice).

    Returns:
        The validated texts.

    Raises:
        DataError: missing/empty file, or an invalid entry with ``"error"``.
    """
    path, spec = resolve_source(source)
    if spec is not None and not domain.reads(spec.domain):
        raise DataError(f"data set {spec.name!r} holds {spec.domain} objects, not {domain.name}")
    if on_invalid is None:
        on_invalid = "skip" if spec is not None and spec.skip_invalid else "error"
    if on_invalid not in ("error", "skip"):
        raise ValueError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}")
    wanted = tuple(targets) if targets is not None else (spec.targets if spec else ())
    records = read_records(
        path,
        fmt=spec.fmt if spec else None,
        column=spec.column if spec else None,
        limit=limit,
        seed=seed,
        keep=split_positions(spec, path),
        extra_columns=wanted,
        column_names=spec.column_names if spec else None,
    )
    texts, lines, skipped, objects = [], [], [], []
    values: dict[str, list[float]] = {name: [] for name in wanted}
    for record in records:
        try:
            if record.error:
                raise ParseError(record.error)
            obj = domain.parse(record.text)
        except ParseError as exc:
            if on_invalid == "error":
                raise DataError(f"{record.where(path)}: {exc} (use --skip-invalid to skip such entries)") from None
            skipped.append((record.line, str(exc)))
            continue
        texts.append(domain.model_text(obj, record.text, canonical=canonicalize))
        lines.append(record.line)
        if keep_objects:
            objects.append(obj)
        for name in values:
            values[name].append(_as_float(record.fields.get(name, "") if record.fields else ""))
    if not texts:
        raise DataError(f"{path} holds no valid {domain.name} entries ({len(skipped)} invalid)")
    return LoadedTexts(texts, lines, path, skipped, values, objects)


def split_positions(spec: DatasetSpec | None, path: Path) -> list[int] | None:
    """Record positions of the spec's split and row filter (None: the whole file)."""
    if spec is None or (spec.split is None and spec.row_filter is None):
        return None
    extra = tuple(c for c in (spec.stratify, spec.row_filter[0] if spec.row_filter else None) if c)
    records = list(iter_records(path, spec.fmt, spec.column, extra, spec.column_names))
    positions = np.arange(len(records))
    if spec.split is not None:
        if spec.stratify:
            labels = [r.fields[spec.stratify] for r in records]
            parts = stratified_split_indices(labels, spec.split_fractions, spec.split_seed)
        else:
            parts = split_indices(len(records), spec.split_fractions, spec.split_seed)
        positions = parts[spec.split]
    if spec.row_filter is not None:
        column, value = spec.row_filter
        positions = np.array([i for i in positions if records[i].fields[column] == value], dtype=int)
    return positions.tolist()


def _as_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")
