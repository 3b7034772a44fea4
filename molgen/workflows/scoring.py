"""Score a file of molecules with an objective (``molgen score``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from molgen.core.errors import MolgenError
from molgen.datasets.readers import read_labeled, require_output_suffix


@dataclass
class ScoreSummary:
    """What ``score_file`` did."""

    n: int
    n_scored: int
    best: float
    path: Path


#: Molecules scored (and written) together.
SCORE_CHUNK = 512


def score_file(path: str | Path, objective: str, output: str | Path, id_column: str | None = None,
               progress: bool = False) -> ScoreSummary:
    """Score every molecule of ``path`` and write a CSV.

    Columns: the identifier when the input has one (named after its source
    column, else ``id``), then ``smiles, valid, score``, each component's
    raw value and its transformed value (``<name>_raw``, ``<name>``), then
    ``rejected_by`` and ``reason``. Invalid lines, SD records RDKit cannot
    read and failed components are rows with an empty score and the reason,
    never dropped.

    Args:
        path: ``.smi``, ``.txt``, ``.csv`` or ``.sdf`` (optionally gzipped).
        objective: Registered objective name or TOML path.
        output: CSV to write.
        id_column: Identifier column (default: see
            :func:`molgen.datasets.readers.read_labeled`).
        progress: Show a progress bar (on a terminal).

    Returns:
        Counts and the best score.

    Raises:
        MolgenError: unreadable or unknown input, an output that is not
            ``.csv``, a missing ``id_column``, unknown objective or bad
            objective file.
    """
    from molgen.domains import SmilesDomain
    from molgen.scoring import get_objective

    require_output_suffix(output, (".csv",))
    labeled = read_labeled(path, id_column)
    records = labeled.records
    if not records:
        raise MolgenError(f"{path}: no molecules to score")
    obj = get_objective(objective)
    domain = SmilesDomain()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)

    def cell(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.6g}"

    from molgen.core.progress import progress_bar

    totals: list[float] = []
    # Scored and written a chunk at a time: a bar can follow a long file, and rows reach the disk as they are done.
    with output.open("w", newline="") as handle, progress_bar(len(records), desc="scoring", unit="mol", enabled=progress) as bar:
        writer = csv.writer(handle)
        for start in range(0, len(records), SCORE_CHUNK):
            chunk = records[start : start + SCORE_CHUNK]
            mols = [None if r.error else domain.try_parse(r.text) for r in chunk]
            table = obj(mols)
            names = list(table.transformed)
            extra = [n for n in table.raw if n not in table.transformed]  # filter-only components
            if start == 0:
                columns = ["smiles", "valid", "score", *(f"{n}_raw" for n in names), *names, *(f"{n}_raw" for n in extra),
                           "rejected_by", "reason"]
                id_name = labeled.id_name if labeled.id_name not in columns else "id"
                writer.writerow(([id_name] if labeled.ids is not None else []) + columns)
            for j, record in enumerate(chunk):
                i = start + j
                writer.writerow([
                    *([labeled.ids[i]] if labeled.ids is not None else []),
                    record.text, int(mols[j] is not None), cell(table.total[j]),
                    *(cell(table.raw[n][j]) for n in names), *(cell(table.transformed[n][j]) for n in names),
                    *(cell(table.raw[n][j]) for n in extra),
                    table.rejected_by[j] or "", record.error or table.reasons[j] or "",
                ])
            totals.extend(float(t) for t in table.total)
            bar.update(len(chunk))
    finite = [t for t in totals if not math.isnan(t)]
    return ScoreSummary(len(records), len(finite), max(finite) if finite else float("nan"), output)
