"""Score a file of molecules with an objective (``molgen score``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from molgen.core.errors import MolgenError
from molgen.workflows.evaluation import read_generated


@dataclass
class ScoreSummary:
    """What ``score_file`` did."""

    n: int
    n_scored: int
    best: float
    path: Path


def score_file(path: str | Path, objective: str, output: str | Path) -> ScoreSummary:
    """Score every SMILES of ``path`` and write a CSV.

    Columns: ``smiles, valid, score``, then each component's raw value and its
    transformed value (``<name>_raw``, ``<name>``), then ``rejected_by`` and
    ``reason``. Invalid lines and failed components are rows with an empty
    score and the reason, never dropped.

    Args:
        path: ``.smi``, ``.txt`` or ``.csv`` of SMILES.
        objective: Registered objective name or TOML path.
        output: CSV to write.

    Returns:
        Counts and the best score.

    Raises:
        MolgenError: unreadable input, unknown objective or bad objective file.
    """
    from molgen.domains import SmilesDomain
    from molgen.scoring import get_objective

    texts = read_generated(path)
    if not texts:
        raise MolgenError(f"{path}: no molecules to score")
    obj = get_objective(objective)
    domain = SmilesDomain()
    mols = [domain.try_parse(t) for t in texts]
    table = obj(mols)
    names = list(table.transformed)
    extra = [n for n in table.raw if n not in table.transformed]  # filter-only components
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)

    def cell(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.6g}"

    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "valid", "score", *(f"{n}_raw" for n in names), *names, *(f"{n}_raw" for n in extra), "rejected_by", "reason"])
        for i, text in enumerate(texts):
            writer.writerow([
                text, int(mols[i] is not None), cell(table.total[i]),
                *(cell(table.raw[n][i]) for n in names), *(cell(table.transformed[n][i]) for n in names),
                *(cell(table.raw[n][i]) for n in extra),
                table.rejected_by[i] or "", table.reasons[i] or "",
            ])
    finite = [t for t in table.total if not math.isnan(t)]
    return ScoreSummary(len(texts), len(finite), max(finite) if finite else float("nan"), output)
