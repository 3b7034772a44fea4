"""Reading and writing crystals: CIF, POSCAR, extended XYZ (through ASE),
the compact text, and ASE ``Atoms`` conversion. Every failure becomes a
:class:`ParseError` that says what is wrong."""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from pathlib import Path
from typing import Iterator

from pymatgen.core import Structure

from molgen.core.errors import DataError, ParseError
from molgen.domains.crystal.text import looks_like_crystal_text, parse_crystal_text

CRYSTAL_FORMATS = ("cif", "poscar", "extxyz", "text")


def detect_format(text: str) -> str:
    """Guess the format of one structure's text: ``cif``, ``poscar`` or ``text``
    (the compact encoding, also the fallback, so that malformed model output
    goes to the cheap strict parser)."""
    stripped = text.lstrip()
    if stripped.startswith("data_") or "_cell_length_a" in text or "_atom_site_" in text:
        return "cif"
    if not looks_like_crystal_text(text) and _looks_like_poscar(text):
        return "poscar"
    return "text"


def _looks_like_poscar(text: str) -> bool:
    # comment, scale factor, three lattice vectors.
    lines = text.strip().splitlines()
    if len(lines) < 7:
        return False
    try:
        float(lines[1].split()[0])
        return all(len(lines[i].split()) >= 3 and [float(x) for x in lines[i].split()[:3]] for i in (2, 3, 4))
    except (ValueError, IndexError):
        return False


def parse_structure(text: str, fmt: str | None = None) -> Structure:
    """Text of one structure -> ordered pymatgen ``Structure``.

    Args:
        text: CIF, POSCAR or compact crystal text.
        fmt: One of :data:`CRYSTAL_FORMATS` (detected when None).

    Returns:
        The structure.

    Raises:
        ParseError: empty, malformed, atom-less or partially occupied input.
    """
    if not text or not text.strip():
        raise ParseError("empty crystal text")
    fmt = fmt or detect_format(text)
    if fmt == "text":
        return parse_crystal_text(text)
    if fmt == "extxyz":
        return _parse_with_ase(text, "extxyz")
    if fmt not in ("cif", "poscar"):
        raise ParseError(f"unknown crystal format {fmt!r}; use one of {', '.join(CRYSTAL_FORMATS)}")
    try:
        with warnings.catch_warnings():  # pymatgen warns on every rounding fix
            warnings.simplefilter("ignore")
            structure = Structure.from_str(text, fmt=fmt)
    except Exception as exc:  # pymatgen raises many types for bad files
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParseError(f"malformed {fmt.upper()}: {message}") from None
    return check_structure(structure)


def check_structure(structure: Structure) -> Structure:
    """Reject what the crystal domain cannot represent.

    Raises:
        ParseError: no atoms, or partial occupancies / mixed sites.
    """
    if len(structure) == 0:
        raise ParseError("the structure has no atoms")
    if not structure.is_ordered:
        formula = structure.composition.formula
        raise ParseError(f"partial occupancy ({formula}): disordered structures are not supported; order them first")
    return structure


def _parse_with_ase(text: str, fmt: str) -> Structure:
    import ase.io

    try:
        atoms = ase.io.read(io.StringIO(text), format=fmt)
    except Exception as exc:
        raise ParseError(f"malformed {fmt}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return from_ase(atoms)


def to_cif(structure: Structure, decimals: int = 6) -> str:
    """Structure -> CIF text (P1, fractional coordinates)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(structure, significant_figures=decimals))


def to_poscar(structure: Structure) -> str:
    """Structure -> POSCAR text."""
    from pymatgen.io.vasp import Poscar

    return Poscar(structure).get_str()


def to_ase(structure: Structure):
    """pymatgen ``Structure`` -> ASE ``Atoms`` (periodic)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(structure)


def from_ase(atoms) -> Structure:
    """ASE ``Atoms`` -> pymatgen ``Structure``.

    Raises:
        ParseError: the atoms have no cell or no atoms.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    if len(atoms) == 0:
        raise ParseError("the structure has no atoms")
    if atoms.cell.rank < 3:
        raise ParseError("the atoms have no 3-D periodic cell")
    return check_structure(AseAtomsAdaptor.get_structure(atoms))


def iter_structure_texts(path: Path) -> Iterator[tuple[str, str, str]]:
    """The structures of a file or folder as ``(where, text, fmt)``.

    Accepts a folder of ``.cif`` files, one ``.cif`` file, a CSV with a ``cif``
    column, an extended XYZ file (``.xyz``/``.extxyz``, several frames) or a
    text file of compact crystal texts separated by blank lines.

    Raises:
        DataError: missing path or no structures found.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    found = False
    for item in _iter_path(path):
        found = True
        yield item
    if not found:
        raise DataError(f"{path} holds no crystal structures")


def _iter_path(path: Path) -> Iterator[tuple[str, str, str]]:
    if path.is_dir():
        # CIFs, plus the raw text of invalid samples that `molgen sample` keeps.
        files = sorted([*path.glob("*.cif"), *path.glob("*.invalid.txt")])
        for file in files:
            yield str(file), file.read_text(errors="replace"), "cif" if file.suffix == ".cif" else "text"
        return
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        import gzip

        raw = gzip.open(path, "rt", encoding="utf-8", errors="replace").read()
        suffixes = suffixes[:-1]
    else:
        raw = path.read_text(encoding="utf-8", errors="replace")
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".cif":
        # A multi-block CIF holds one structure per data_ block.
        blocks = ["data_" + b for b in raw.split("data_")[1:]] or [raw]
        for i, block in enumerate(blocks):
            yield f"{path}#{i + 1}", block, "cif"
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(raw))
        columns = {c.lower(): c for c in reader.fieldnames or []}
        if "cif" not in columns:
            raise DataError(f"{path}: a crystal CSV needs a 'cif' column; columns are {', '.join(columns.values())}")
        for number, row in enumerate(reader, start=2):
            yield f"{path}:{number}", row[columns["cif"]] or "", "cif"
    elif suffix in (".xyz", ".extxyz"):
        yield from _iter_extxyz(path, raw)
    else:
        for i, block in enumerate(b for b in raw.split("\n\n") if b.strip()):
            yield f"{path}#{i + 1}", block, "text"


def _iter_extxyz(path: Path, raw: str) -> Iterator[tuple[str, str, str]]:
    import ase.io

    from molgen.domains.crystal.text import CrystalTextCodec

    try:
        frames = ase.io.read(io.StringIO(raw), index=":", format="extxyz")
    except Exception as exc:
        raise DataError(f"{path}: malformed extended XYZ ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    codec = CrystalTextCodec(length_decimals=6, angle_decimals=6, coord_decimals=8)
    for i, atoms in enumerate(frames):
        try:
            yield f"{path}#{i + 1}", codec.encode(from_ase(atoms)), "text"
        except ParseError as exc:
            yield f"{path}#{i + 1}", f"# {exc}", "text"


def looks_like_crystal_file(path: str | Path) -> bool:
    """Whether ``path`` holds crystals: a folder, ``.cif``/``.xyz``/``.extxyz``,
    a CSV with a ``cif`` column, or a text file of compact crystal blocks."""
    path = Path(path)
    if path.is_dir():
        return True
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".cif", ".xyz", ".extxyz", ".poscar", ".vasp"):
        return True
    if not path.is_file():
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    if suffix == ".csv":
        header = next(csv.reader([head.splitlines()[0] if head else ""]), [])
        return "cif" in [h.strip().lower() for h in header]
    first_block = "\n".join(line for line in head.split("\n\n")[0].splitlines() if not line.startswith("#"))
    return looks_like_crystal_text(first_block)
