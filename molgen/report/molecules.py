"""Report sections for a set of generated molecules: validity and uniqueness
through the domain, MOSES property distributions (against a reference when
one is given) and a grid of depictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from molgen.report.depict import molecule_svg
from molgen.report.html import Image, Page

#: Reference molecules read for the property distributions (a seeded subset).
REFERENCE_LIMIT = 2000
#: Property labels, and the columns of :data:`MOSES_PROPERTIES` (and of :meth:`MoleculeSet.properties`).
PROPERTY_LABELS = {"weight": "MW (g/mol)", "logP": "logP", "QED": "QED", "SA": "SA score"}
PROPERTY_COLUMNS = {"logP": 0, "SA": 1, "QED": 2, "weight": 3}
INVALID_SHOWN = 10


@dataclass
class ParsedMolecules:
    """Entries of a molecule file judged by their domain.

    Attributes:
        keys: Canonical SMILES per entry, None where invalid.
        mols: The RDKit molecule of the first occurrence of each key.
    """

    texts: list[str]
    names: list[str | None]
    keys: list[str | None]
    mols: dict[str, object] = field(default_factory=dict)

    @property
    def n_valid(self) -> int:
        return sum(k is not None for k in self.keys)

    def unique(self) -> list[tuple[int, str]]:
        """``(entry index, key)`` of the first occurrence of each valid molecule."""
        seen: dict[str, int] = {}
        for i, key in enumerate(self.keys):
            if key is not None and key not in seen:
                seen[key] = i
        return [(i, k) for k, i in seen.items()]


def parse_molecules(texts: Sequence[str], names: Sequence[str | None], domain) -> ParsedMolecules:
    """Judge each text with ``domain`` (SMILES or SELFIES); keys are canonical SMILES."""
    keys, mols = [], {}
    for text in texts:
        obj = domain.try_parse(text)
        key = None if obj is None else domain.key(obj)
        keys.append(key)
        if key is not None and key not in mols:
            mols[key] = obj
    return ParsedMolecules(list(texts), list(names), keys, mols)


def molecule_properties(mols: Sequence[object]) -> np.ndarray:
    """``(n, 4)`` logP, SA, QED and MW of parsed molecules with the MOSES
    property functions (NaN where one fails)."""
    from molgen.properties.molecular import MOSES_PROPERTIES

    functions = [MOSES_PROPERTIES[name] for name in PROPERTY_COLUMNS]  # logP, SA, QED, weight
    out = np.full((len(mols), len(functions)), np.nan)
    for i, mol in enumerate(mols):
        for j, fn in enumerate(functions):
            try:
                out[i, j] = fn(mol)
            except Exception:  # noqa: BLE001  (one odd molecule must not end the report)
                pass
    return out


def reference_properties(smiles: Sequence[str]) -> np.ndarray:
    """The same table for a reference set, computed and cached (under
    ``MOLGEN_HOME``, keyed by content) by :class:`~molgen.metrics.MoleculeSet`,
    so a second report against the same reference skips the work."""
    from molgen.metrics import MoleculeSet
    from molgen.metrics.cache import default_cache_root

    if not smiles:
        return np.zeros((0, 4))
    return MoleculeSet(list(smiles), cache_root=default_cache_root()).properties()


def load_reference_smiles(reference: str) -> list[str]:
    """A seeded subset of at most :data:`REFERENCE_LIMIT` valid molecules of a
    data set name or file (invalid entries skipped)."""
    from molgen.datasets import load_texts
    from molgen.domains import SmilesDomain

    return load_texts(reference, SmilesDomain(), limit=REFERENCE_LIMIT, seed=0, on_invalid="skip").texts


def add_molecule_sections(page: Page, parsed: ParsedMolecules, *, reference: str | None, max_depictions: int,
                          metrics: bool = True) -> None:
    """Summary table, property distributions and depiction grid of a molecule set.

    Args:
        page: The report.
        parsed: The judged entries.
        reference: Data set name or path to compare the distributions with.
        max_depictions: Distinct molecules drawn (first ones in file order).
        metrics: Add the validity/uniqueness table (an evaluation report
            already has its own).
    """
    n, n_valid = len(parsed.texts), parsed.n_valid
    unique = parsed.unique()
    if metrics:
        section = page.section("Validity and uniqueness")
        section.table(["metric", "value"], [
            ("entries", n), ("valid", n_valid), ("validity", n_valid / n if n else float("nan")),
            ("unique valid (canonical SMILES)", len(unique)),
            ("uniqueness (unique / valid)", len(unique) / n_valid if n_valid else float("nan")),
        ])
        invalid = [(i, t, parsed.names[i]) for i, (t, k) in enumerate(zip(parsed.texts, parsed.keys)) if k is None]
        if invalid:
            section.table(["entry", "text", "name"], invalid[:INVALID_SHOWN], text_columns=(1,),
                          caption=f"First {min(len(invalid), INVALID_SHOWN)} of {len(invalid)} invalid entries")
    _property_section(page, [parsed.mols[k] for _, k in unique], reference)
    _depiction_section(page, parsed, unique, max_depictions)


def _property_section(page: Page, mols: list[object], reference: str | None) -> None:
    from molgen.report.figures import histograms

    section = page.section("Property distributions")
    if not mols:
        section.note("No valid molecules: nothing to plot.")
        return
    gen = molecule_properties(mols)
    ref = reference_properties(load_reference_smiles(reference)) if reference is not None else None
    order = ["weight", "logP", "QED", "SA"]
    panels = [(PROPERTY_LABELS[p], gen[:, PROPERTY_COLUMNS[p]], None if ref is None else ref[:, PROPERTY_COLUMNS[p]]) for p in order]
    label = f"reference: {reference}" if reference else "reference"
    section.image(Image.png(histograms(panels, reference_label=label), alt="property histograms"),
                  caption=f"Distinct valid molecules ({len(mols)})"
                  + (f" against {len(ref)} distinct molecules of {reference}" if ref is not None else ""))
    rows = []
    for p in order:
        g = gen[:, PROPERTY_COLUMNS[p]]
        row = [PROPERTY_LABELS[p], float(np.nanmean(g)), float(np.nanmedian(g))]
        if ref is not None:
            r = ref[:, PROPERTY_COLUMNS[p]]
            row += [float(np.nanmean(r)), float(np.nanmedian(r))]
        rows.append(row)
    headers = ["property", "mean", "median"] + (["reference mean", "reference median"] if ref is not None else [])
    section.table(headers, rows)
    if reference is None:
        section.note("No reference given: pass one (a data set name or a file) to overlay its distributions.")


def _depiction_section(page: Page, parsed: ParsedMolecules, unique: list[tuple[int, str]], max_depictions: int) -> None:
    section = page.section("Molecules")
    if max_depictions <= 0:
        section.note("Depictions turned off (max_depictions = 0).")
        return
    if not unique:
        section.note("No valid molecules to draw.")
        return
    items = []
    for i, key in unique[:max_depictions]:
        image = molecule_svg(key)
        if image is not None:
            name = parsed.names[i]
            items.append((image, [f"entry {i}" + (f" \u00b7 {name}" if name else "")], key))
    section.paragraph(f"The first {len(items)} distinct valid molecules of {len(unique)}, in file order.")
    section.grid(items)
