"""Report sections for a set of peptides: validity through the protein
domain, a sequence table and length/charge distributions."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from molgen.report.html import Image, Page

#: Reference sequences read for the distributions.
REFERENCE_LIMIT = 2000


def _charge(seq: str) -> float:
    from molgen.properties.peptides import net_charge

    try:
        return net_charge(seq)
    except (ValueError, KeyError):  # empty or non-standard residues
        return math.nan


def add_peptide_sections(page: Page, texts: Sequence[str], names: Sequence[str | None], *, reference: str | None,
                         max_rows: int, metrics: bool = True) -> None:
    """Validity table, sequence table and length/net-charge histograms.

    Args:
        page: The report.
        texts: Sequences in file order (invalid ones kept).
        names: FASTA headers or other names (None when absent).
        reference: Peptide data set name or file for the distributions.
        max_rows: Sequences listed.
        metrics: Add the validity/uniqueness table.
    """
    from molgen.domains.protein import ProteinDomain
    from molgen.report.figures import histograms

    domain = ProteinDomain()
    objs = [domain.try_parse(t) for t in texts]
    keys = [None if o is None else domain.key(o) for o in objs]
    valid = [k is not None for k in keys]
    n, n_valid, n_unique = len(texts), sum(valid), len({k for k in keys if k is not None})
    if metrics:
        page.section("Validity and uniqueness").table(["metric", "value"], [
            ("entries", n), ("valid", n_valid), ("validity", n_valid / n if n else float("nan")),
            ("unique valid", n_unique), ("uniqueness (unique / valid)", n_unique / n_valid if n_valid else float("nan")),
        ])
    seqs = [o for o in objs if o is not None]
    lengths = np.array([len(s) for s in seqs], dtype=float)
    charges = np.array([_charge(s) for s in seqs], dtype=float)
    section = page.section("Sequences")
    if max_rows <= 0:
        section.note("Sequence table turned off (max_depictions = 0).")
    else:
        rows = []
        for i, text in enumerate(texts[:max_rows]):
            obj = objs[i]
            rows.append([i, names[i], text, len(obj) if obj else None, _charge(obj) if obj else None, obj is not None])
        section.table(["entry", "name", "sequence", "length", "net charge (pH 7)", "valid"], rows, text_columns=(2,),
                      caption=f"First {len(rows)} of {n} entries")
    dist = page.section("Length and charge distributions")
    if not seqs:
        dist.note("No valid sequences: nothing to plot.")
        return
    ref_len = ref_charge = None
    if reference is not None:
        from molgen.datasets import load_texts

        ref = load_texts(reference, domain, limit=REFERENCE_LIMIT, seed=0, on_invalid="skip").texts
        ref_len = np.array([len(s) for s in ref], dtype=float)
        ref_charge = np.array([_charge(s) for s in ref], dtype=float)
    label = f"reference: {reference}" if reference else "reference"
    panels = [("length (residues)", lengths, ref_len), ("net charge at pH 7", charges, ref_charge)]
    dist.image(Image.png(histograms(panels, reference_label=label, bins=30), alt="peptide histograms"),
               caption=f"Valid sequences ({len(seqs)})" + (f" against {len(ref_len)} of {reference}" if ref_len is not None else ""))
    rows = [["length", float(np.mean(lengths)), float(np.median(lengths))],
            ["net charge", float(np.nanmean(charges)), float(np.nanmedian(charges))]]
    if ref_len is not None:
        rows[0] += [float(np.mean(ref_len)), float(np.median(ref_len))]
        rows[1] += [float(np.nanmean(ref_charge)), float(np.nanmedian(ref_charge))]
    dist.table(["property", "mean", "median"] + (["reference mean", "reference median"] if ref_len is not None else []), rows)
    if reference is None:
        dist.note("No reference given: pass one (e.g. amp-positive-test, or a FASTA file) to overlay its distributions.")
