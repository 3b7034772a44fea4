"""Reports of generated objects: a sample file (``molgen sample`` output in
any of its formats, or a user's own SMILES/FASTA/CIF file) or an evaluation
report (``molgen evaluate`` JSON, molecules, crystals or peptides)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molgen.core.errors import DataError
from molgen.datasets.readers import file_suffix
from molgen.report.html import Page, flatten

#: Suffixes of sample files (each optionally ``.gz``).
SAMPLE_SUFFIXES = (".smi", ".smiles", ".csv", ".tsv", ".txt", ".fasta", ".fa", ".faa", ".fas", ".cif", ".xyz", ".extxyz")
_SELFIES = re.compile(r"^(\[[^\[\]]+\])+$")
_PEPTIDE = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]+$")
# Amino-acid letters that are no SMILES atom symbols: a sequence without one could be a SMILES.
_NOT_SMILES = re.compile(r"[ADEGHKLMQRTVWY]")


@dataclass
class SampleSet:
    """The entries of a sample file and the domain they belong to.

    Attributes:
        domain: ``smiles``, ``selfies``, ``crystal`` or ``protein``.
        texts: Entries in file order, invalid ones kept.
        names: Each entry's name (``.smi`` second field, FASTA header), or None.
    """

    path: Path
    domain: str
    texts: list[str]
    names: list[str | None]


def is_sample_path(path: Path) -> bool:
    """Whether ``path`` looks like a sample file or a folder of CIFs."""
    if path.is_dir():
        return any(path.glob("*.cif"))
    return file_suffix(path) in SAMPLE_SUFFIXES


def sniff_text_domain(texts: list[str]) -> str:
    """``selfies``, ``protein`` or ``smiles`` from the look of the first entries."""
    head = [t for t in texts[:200] if t]
    if not head:
        return "smiles"
    if sum(bool(_SELFIES.match(t)) for t in head) >= 0.8 * len(head) and any("][" in t for t in head):
        return "selfies"
    if all(_PEPTIDE.match(t.upper()) for t in head) and sum(bool(_NOT_SMILES.search(t.upper())) for t in head) >= 0.5 * len(head):
        return "protein"
    return "smiles"


#: Text columns of a ``molgen sample`` CSV (``index,<domain>,valid,canonical``) or a user's CSV, and their domains.
CSV_TEXT_COLUMNS = {"smiles": "smiles", "molgraph": "smiles", "selfies": "selfies", "protein": "protein", "sequence": "protein"}


def _csv_text_column(path: Path) -> tuple[str | None, str | None]:
    """``(column, domain)`` of the first column named after a domain, else ``(None, None)``."""
    from molgen.datasets.readers import csv_columns

    for column in csv_columns(path):
        if column.lower() in CSV_TEXT_COLUMNS:
            return column, CSV_TEXT_COLUMNS[column.lower()]
    return None, None


def read_sample_file(path: str | Path) -> SampleSet:
    """Read a sample file (or a folder of CIFs) with its domain detected from
    its content: FASTA -> peptides; CIF/XYZ, a CSV with a ``cif`` column or
    blank-line separated crystal texts -> crystals; otherwise SMILES (or
    SELFIES, or bare peptide sequences, by their look).

    Raises:
        DataError: unreadable or empty file.
    """
    from molgen.datasets.readers import FASTA_SUFFIXES, iter_records
    from molgen.domains.crystal.io import looks_like_crystal_file

    path = Path(path)
    suffix = file_suffix(path)
    if suffix in FASTA_SUFFIXES:
        records = list(iter_records(path, fmt="fasta"))
        return _checked(SampleSet(path, "protein", [r.text for r in records], [r.name for r in records]))
    if looks_like_crystal_file(path):
        from molgen.domains.crystal import iter_structure_texts

        items = list(iter_structure_texts(path))
        return _checked(SampleSet(path, "crystal", [text for _, text, _ in items], [Path(where).name for where, _, _ in items]))
    if suffix in (".csv", ".tsv"):
        column, domain = _csv_text_column(path)
        records = list(iter_records(path, fmt="csv", column=column))
        texts = [r.text for r in records]
        return _checked(SampleSet(path, domain or sniff_text_domain(texts), texts, [None] * len(texts)))
    records = list(iter_records(path, fmt="smi"))
    texts = [r.text for r in records]
    return _checked(SampleSet(path, sniff_text_domain(texts), texts, [r.name for r in records]))


def _checked(samples: SampleSet) -> SampleSet:
    if not samples.texts:
        raise DataError(f"{samples.path} holds no entries")
    return samples


def add_sample_sections(page: Page, samples: SampleSet, *, reference: str | None, max_depictions: int, metrics: bool = True) -> None:
    """The sections of a sample set, by domain (see :mod:`molgen.report.molecules`,
    :mod:`~molgen.report.crystals`, :mod:`~molgen.report.peptides`)."""
    if samples.domain == "crystal":
        from molgen.report.crystals import add_crystal_sections, parse_crystals

        add_crystal_sections(page, parse_crystals(samples.texts, samples.names), reference=reference,
                             max_depictions=max_depictions, metrics=metrics)
    elif samples.domain == "protein":
        from molgen.report.peptides import add_peptide_sections

        add_peptide_sections(page, samples.texts, samples.names, reference=reference, max_rows=max_depictions, metrics=metrics)
    else:
        from molgen.core.registry import DOMAINS
        from molgen.report.molecules import add_molecule_sections, parse_molecules

        parsed = parse_molecules(samples.texts, samples.names, DOMAINS.get(samples.domain)())
        add_molecule_sections(page, parsed, reference=reference, max_depictions=max_depictions, metrics=metrics)


def build_samples(page: Page, path: Path, *, reference: str | None, max_depictions: int) -> None:
    """Report of a sample file."""
    samples = read_sample_file(path)
    page.header.append(f"domain: {samples.domain} \u00b7 {len(samples.texts)} entries")
    add_sample_sections(page, samples, reference=reference, max_depictions=max_depictions)


# -- evaluation reports ---------------------------------------------------------
def is_evaluation_report(data: Any) -> bool:
    """Whether parsed JSON is a :class:`~molgen.metrics.MetricReport` dump."""
    return isinstance(data, dict) and isinstance(data.get("metrics"), dict)


def build_evaluation(page: Page, path: Path, data: dict, *, reference: str | None, max_depictions: int) -> None:
    """Report of an evaluation JSON: its metric table, its metadata and, when
    the evaluated file is still there, the sections of that file."""
    metrics, reasons, meta = data.get("metrics") or {}, data.get("unavailable") or {}, data.get("metadata") or {}
    domain = meta.get("domain", "smiles")
    page.header.append(f"domain: {domain} \u00b7 {len(metrics)} metrics")
    section = page.section("Metrics")
    if metrics:
        section.table(["metric", "value", "note"], [(name, value, reasons.get(name, "") if value is None else "")
                                                     for name, value in metrics.items()])
    else:
        section.note("The report holds no metrics.")
    details = page.section("Evaluation details")
    skip = ("versions", "seconds", "options")
    details.key_values([(k, v) for k, v in flatten({k: v for k, v in meta.items() if k not in skip})])
    if isinstance(meta.get("versions"), dict):
        details.key_values(meta["versions"], caption="versions")
    generated = meta.get("generated_file")
    if not generated:
        details.note("The report does not name the evaluated file: no distributions or pictures.")
        return
    candidates = [Path(generated), path.parent / Path(generated).name, path.parent / generated]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        details.note(f"The evaluated file {generated} is not found (looked next to the report too): no distributions or pictures.")
        return
    try:
        samples = read_sample_file(found)
    except DataError as exc:
        details.note(f"Could not read the evaluated file {found}: {exc}")
        return
    if domain in ("crystal", "protein"):
        samples.domain = domain
    add_sample_sections(page, samples, reference=reference, max_depictions=max_depictions, metrics=False)
