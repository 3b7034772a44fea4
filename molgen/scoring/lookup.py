"""A table of known values as a scoring component: the "oracle" of
retrospective benchmarks (docking scores of a screened library, assay results
already measured), looked up by canonical SMILES."""

from __future__ import annotations

import math

from molgen.core.errors import DataError, MolgenError


class TableLookup:
    """``Mol -> value`` from a CSV of SMILES and values.

    Args:
        source: Registered data set name (e.g. ``enamine10k-docking``) or a
            CSV path (optionally ``.gz``).
        column: Column of the values.
        smiles_column: Column of the SMILES (default: the data set's, else
            ``smiles``).

    Raises:
        MolgenError: unreadable source or missing columns.
    """

    def __init__(self, source: str, column: str, smiles_column: str | None = None):
        import csv

        from rdkit import Chem

        from molgen.datasets.loading import resolve_source
        from molgen.datasets.readers import _open_text

        path, spec = resolve_source(source)
        key_column = smiles_column or (spec.column if spec is not None and spec.column else "smiles")
        self.values: dict[str, float] = {}
        self.skipped = 0
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            fields = {f.lower(): f for f in reader.fieldnames or ()}
            missing = [c for c in (key_column, column) if c.lower() not in fields]
            if missing:
                raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(reader.fieldnames or ())})")
            k, v = fields[key_column.lower()], fields[column.lower()]
            for row in reader:
                mol = Chem.MolFromSmiles(row[k] or "")
                try:
                    value = float(row[v])
                except (TypeError, ValueError):
                    value = math.nan
                if mol is None or math.isnan(value):
                    self.skipped += 1
                    continue
                self.values[Chem.MolToSmiles(mol)] = value
        if not self.values:
            raise DataError(f"{path}: no rows with a valid SMILES and a numeric {column!r}")

    def __call__(self, mol) -> float:
        from rdkit import Chem

        key = Chem.MolToSmiles(mol)
        if key not in self.values:
            raise MolgenError("not in the lookup table")
        return self.values[key]
