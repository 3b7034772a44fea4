"""SD files (``.sdf``/``.sd``, optionally gzipped): read with RDKit's
supplier into :class:`~molgen.datasets.readers.Record` s, written with
RDKit's ``SDWriter``."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from molgen.core.errors import DataError
from molgen.datasets.readers import Record

#: RDKit's name of an SD record's title (its first line).
TITLE = "_Name"

# Normalised (lower case, letters and digits only) property names that hold an identifier.
_ID_NAMES = ("id", "name", "compoundid", "compoundname", "molid", "molname", "moleculeid", "catalogid", "idnumber", "regno")


def id_like_property(names: Iterable[str]) -> str | None:
    """The first property name that looks like an identifier (``ID``,
    ``name``, ``compound_id``, ``Catalog ID``, ``chembl_id``...), or None."""
    names = list(names)
    for name in names:
        if re.sub(r"[^a-z0-9]", "", name.lower()) in _ID_NAMES:
            return name
    return next((n for n in names if re.search(r"[ _-]id$", n.lower())), None)


def iter_sdf(path: Path, extra_columns: Sequence[str] = ()) -> Iterator[Record]:
    """Yield the records of an SD file one at a time.

    Each record's text is its canonical SMILES (hydrogens removed,
    stereochemistry from the coordinates and wedges), ``fields`` its SD
    properties, ``name`` its title and ``line`` its 1-based record number. A
    record RDKit cannot read or sanitize is yielded with empty text and
    ``error`` set (keeping its title and properties where RDKit got that
    far), so it is counted as an invalid entry, never dropped.

    Args:
        path: ``.sdf``/``.sd`` file, optionally gzipped.
        extra_columns: Properties (case-insensitive) each record must offer
            in ``fields`` under the requested spelling (``""`` where a
            record lacks it).

    Raises:
        DataError: unreadable file, or an ``extra_columns`` property that no
            record has (listing the properties seen).
    """
    from rdkit import Chem, rdBase

    path = Path(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    seen: set[str] = set()
    try:
        with opener(path, "rb") as handle:
            supplier = Chem.ForwardSDMolSupplier(handle, sanitize=False, removeHs=False)
            number = 0
            while True:
                number += 1
                with rdBase.BlockLogs():  # RDKit would print each failure to stderr
                    try:
                        mol = next(supplier)
                    except StopIteration:
                        break
                    if mol is None:
                        record = Record("", number, None, None, "unreadable SD record (RDKit could not parse its molblock)")
                    else:
                        props = {name: mol.GetProp(name).strip() for name in mol.GetPropNames()}
                        seen.update(props)
                        lowered = {name.lower(): value for name, value in props.items()}
                        fields = {**props, **{name: lowered.get(name.lower(), "") for name in extra_columns}}
                        title = mol.GetProp(TITLE).strip() if mol.HasProp(TITLE) else ""
                        text, error = _smiles(mol)
                        record = Record(text, number, fields, title or None, error)
                yield record
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, RuntimeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    missing = [name for name in extra_columns if name.lower() not in {s.lower() for s in seen}]
    if missing:
        raise DataError(f"{path}: no SD property {missing[0]!r}; properties are {', '.join(sorted(seen)) or 'none'}")


def _smiles(mol) -> tuple[str, str | None]:
    """``(canonical SMILES, None)``, or ``("", reason)`` when RDKit rejects
    the molecule. Sanitized here rather than by the supplier so that a
    rejected record keeps its title and properties and tells why."""
    from rdkit import Chem

    try:
        Chem.SanitizeMol(mol)
        mol = Chem.RemoveHs(mol)
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
        text = Chem.MolToSmiles(mol)
    except Exception as exc:  # noqa: BLE001 - RDKit raises several sanitization classes
        return "", f"invalid SD record: {exc}"
    if not text:
        return "", "SD record holds no atoms"
    return text, None


def write_sdf(path: str | Path, entries: Iterable[tuple[str, object, dict[str, object]]]) -> int:
    """Write molecules as an SD file with 2D coordinates.

    Args:
        path: Output file.
        entries: ``(title, RDKit Mol, properties)``; integer properties are
            written as integers, everything else as text.

    Returns:
        How many molecules were written.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Chem.SDWriter(str(path))
    count = 0
    try:
        for title, mol, props in entries:
            mol = Chem.Mol(mol)  # the caller's molecule keeps its (lack of) coordinates
            AllChem.Compute2DCoords(mol)
            mol.SetProp(TITLE, title)
            for name, value in props.items():
                if isinstance(value, int):  # bool included
                    mol.SetIntProp(name, int(value))
                else:
                    mol.SetProp(name, str(value))
            writer.write(mol)
            count += 1
    finally:
        writer.close()
    return count
