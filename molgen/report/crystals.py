"""Report sections for a set of crystals: validity through the domain, a
composition/density table, density and size distributions and pictures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from molgen.report.depict import crystal_png
from molgen.report.html import Image, Page, Section

#: Reference crystals read for the distributions (parsing CIFs is slow).
REFERENCE_LIMIT = 500


@dataclass
class ParsedCrystals:
    """Entries judged by the crystal domain.

    Attributes:
        structures: The parsed structure per entry (None: does not parse).
        valid: CDVAE validity (structural and compositional) per entry.
        keys: Domain key (reduced formula) of each valid entry, else None.
    """

    texts: list[str]
    names: list[str | None]
    structures: list[Any]
    valid: list[bool]
    keys: list[str | None]


def parse_crystals(texts: Sequence[str], names: Sequence[str | None], domain=None) -> ParsedCrystals:
    """Parse and judge crystal texts (CIF, POSCAR or compact text)."""
    from molgen.domains.crystal import CrystalDomain

    domain = domain or CrystalDomain()
    structures, valid, keys = [], [], []
    for text in texts:
        try:
            obj = domain.parse(text)
        except Exception:  # noqa: BLE001  (ParseError, or whatever a malformed cell trips in pymatgen)
            obj = None
        ok = obj is not None and bool(domain.is_valid(obj))
        structures.append(obj)
        valid.append(ok)
        keys.append(domain.key(obj) if ok else None)
    return ParsedCrystals(list(texts), list(names), structures, valid, keys)


def space_group(structure) -> str | None:
    """International symbol at a loose tolerance (None when spglib fails)."""
    import warnings

    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        with warnings.catch_warnings():  # spglib's notice about its error handling, once per call
            warnings.simplefilter("ignore", DeprecationWarning)
            return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol()
    except Exception:  # noqa: BLE001
        return None


def structure_row(structure) -> list[Any]:
    """Formula, reduced formula, sites, volume (A^3), density (g/cm^3) and space group."""
    return [structure.composition.formula, structure.composition.reduced_formula, len(structure),
            float(structure.volume), float(structure.density), space_group(structure)]


STRUCTURE_HEADERS = ["formula", "reduced formula", "sites", "volume (\u00c5\u00b3)", "density (g/cm\u00b3)", "space group"]


def structure_grid(section: Section, items: Sequence[tuple[Any, list[str]]]) -> int:
    """Add pictures of ``(structure, caption lines)``; returns how many were drawn."""
    cells = []
    for structure, lines in items:
        image = crystal_png(structure) if structure is not None else None
        if image is not None:
            cells.append((image, lines, structure.composition.reduced_formula))
    if cells:
        section.grid(cells)
    return len(cells)


def add_crystal_sections(page: Page, parsed: ParsedCrystals, *, reference: str | None, max_depictions: int,
                         metrics: bool = True) -> None:
    """Validity table, composition/density table, distributions and pictures.

    Args:
        page: The report.
        parsed: The judged entries.
        reference: Crystal data set name or file for the distributions.
        max_depictions: Structures listed and drawn (first ones in file order).
        metrics: Add the validity/uniqueness table.
    """
    n = len(parsed.texts)
    parsed_ok = [i for i, s in enumerate(parsed.structures) if s is not None]
    n_valid = sum(parsed.valid)
    n_unique = len({k for k in parsed.keys if k is not None})
    if metrics:
        page.section("Validity and uniqueness").table(["metric", "value"], [
            ("entries", n), ("parsed", len(parsed_ok)), ("valid (structure and composition)", n_valid),
            ("validity", n_valid / n if n else float("nan")), ("distinct reduced formulas among valid", n_unique),
            ("formula uniqueness (distinct / valid)", n_unique / n_valid if n_valid else float("nan")),
        ])
    section = page.section("Composition and density")
    shown = parsed_ok[:max(max_depictions, 0)]
    if not parsed_ok:
        section.note("No entry parses as a crystal structure.")
    elif not shown:
        section.note("Structure table turned off (max_depictions = 0).")
    else:
        rows = [[i, *structure_row(parsed.structures[i]), parsed.valid[i]] for i in shown]
        section.table(["entry", *STRUCTURE_HEADERS, "valid"], rows, caption=f"First {len(rows)} of {len(parsed_ok)} parsed structures")
    _distribution_section(page, [parsed.structures[i] for i in parsed_ok], reference)
    pictures = page.section("Structures")
    if not shown:
        pictures.note("No structures to draw." if not parsed_ok else "Pictures turned off (max_depictions = 0).")
        return
    drawn = structure_grid(pictures, [(parsed.structures[i], [f"entry {i}" + ("" if parsed.valid[i] else " (invalid)")]) for i in shown])
    if drawn < len(shown):
        pictures.note(f"{len(shown) - drawn} structures could not be drawn.")


def load_reference_structures(reference: str) -> list[Any]:
    """A seeded subset of at most :data:`REFERENCE_LIMIT` structures of a
    crystal data set name or file."""
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain

    return load_texts(reference, CrystalDomain(), limit=REFERENCE_LIMIT, seed=0, on_invalid="skip", keep_objects=True).objects


def _distribution_section(page: Page, structures: list[Any], reference: str | None) -> None:
    from molgen.report.figures import histograms

    section = page.section("Density and size distributions")
    if not structures:
        section.note("No parsed structures: nothing to plot.")
        return
    ref = load_reference_structures(reference) if reference is not None else None

    def values(items):
        return (np.array([float(s.density) for s in items]), np.array([len(s) for s in items], dtype=float),
                np.array([float(s.volume) / len(s) for s in items]))

    gen_v = values(structures)
    ref_v = values(ref) if ref else (None, None, None)
    panels = [("density (g/cm\u00b3)", gen_v[0], ref_v[0]), ("sites per cell", gen_v[1], ref_v[1]),
              ("volume per atom (\u00c5\u00b3)", gen_v[2], ref_v[2])]
    label = f"reference: {reference}" if reference else "reference"
    section.image(Image.png(histograms(panels, reference_label=label, columns=3, bins=30), alt="crystal distributions"),
                  caption=f"Parsed structures ({len(structures)})" + (f" against {len(ref)} of {reference}" if ref else ""))
    if reference is None:
        section.note("No reference given: pass one (a data set name such as perov-5-test, or a file) to overlay its distributions.")
