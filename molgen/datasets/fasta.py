"""FASTA files of peptide and protein sequences: read with headers kept,
write with wrapped lines."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from molgen.datasets.readers import iter_records


def read_fasta(path) -> list[tuple[str, str]]:
    """``(header, sequence)`` of each record of a FASTA file (wrapped lines
    joined, headers kept).

    Raises:
        DataError: missing file or text before the first header.
    """
    return [(r.fields["header"], r.text) for r in iter_records(Path(path), fmt="fasta")]


def write_fasta(path, records: Sequence[tuple[str, str]], width: int = 60) -> None:
    """Write ``(header, sequence)`` records, sequences wrapped at ``width``."""
    with open(Path(path), "w") as handle:
        for header, seq in records:
            handle.write(f">{header}\n")
            for start in range(0, len(seq), width):
                handle.write(seq[start : start + width] + "\n")
            if not seq:
                handle.write("\n")
