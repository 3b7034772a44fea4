"""Score a file of molecules with an objective (``molgen score``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molgen.datasets.readers import require_output_suffix


@dataclass
class ScoreSummary:
    """What ``score_file`` did."""

    n: int
    n_scored: int
    best: float
    path: Path


#: Molecules scored (and written) together: one executor task.
SCORE_CHUNK = 1024


def score_columns(objective) -> list[str]:
    """The output columns of :func:`score_file` after the identifier."""
    from molgen.scoring.parallel import component_names

    names, extra = component_names(objective)
    return ["smiles", "valid", "score", *(f"{n}_raw" for n in names), *names, *(f"{n}_raw" for n in extra),
            "rejected_by", "reason"]


def score_smiles_part(payload: tuple) -> tuple[list[list[str]], tuple[int, float]]:
    """Executor task: parse and score one chunk of SMILES.

    Args:
        payload: ``(ObjectiveSource, texts, read_errors)``; a read error
            (an SD record RDKit rejected) makes its row invalid.

    Returns:
        One row of cells per text (the :func:`score_columns`), and
        ``(molecules with a score, best score)`` (NaN: none).
    """
    from molgen.domains import SmilesDomain
    from molgen.scoring.parallel import built_objective, component_names
    from molgen.workflows.streaming import format_cell as _cell

    source, texts, errors = payload
    domain = SmilesDomain()
    mols = [None if error else domain.try_parse(text) for text, error in zip(texts, errors)]
    objective = built_objective(source)
    table = objective(mols)
    names, extra = component_names(objective)
    rows = [[text, str(int(mols[j] is not None)), _cell(table.total[j]),
             *(_cell(table.raw[n][j]) for n in names), *(_cell(table.transformed[n][j]) for n in names),
             *(_cell(table.raw[n][j]) for n in extra),
             table.rejected_by[j] or "", errors[j] or table.reasons[j] or ""]
            for j, text in enumerate(texts)]
    finite = table.total[np.isfinite(table.total)]
    return rows, (len(finite), float(finite.max()) if len(finite) else float("nan"))


def score_file(path: str | Path, objective: str, output: str | Path, id_column: str | None = None,
               progress: bool = False, executor: str = "serial", workers: int = 1,
               chunk_size: int = SCORE_CHUNK, device: str | None = None) -> ScoreSummary:
    """Score every molecule of ``path`` and write a CSV, streaming: the file
    is read, scored and written a chunk at a time, so memory stays flat
    however long it is, and rows reach the disk as they are done.

    Columns: the identifier when the input has one (named after its source
    column, else ``id``), then ``smiles, valid, score``, each component's
    raw value and its transformed value (``<name>_raw``, ``<name>``), then
    ``rejected_by`` and ``reason``. Invalid lines, SD records RDKit cannot
    read and failed components are rows with an empty score and the reason,
    never dropped; a chunk whose worker died is written with the error as
    each row's reason. Rows keep the input order whatever the executor.

    Args:
        path: ``.smi``, ``.txt``, ``.csv`` or ``.sdf`` (optionally gzipped).
        objective: Registered objective name or TOML path.
        output: CSV to write.
        id_column: Identifier column (default: see
            :func:`molgen.datasets.readers.iter_labeled`).
        progress: Show a progress bar (on a terminal).
        executor: Where chunks are parsed and scored: ``serial`` (this
            process), ``process`` (a local pool) or ``ray`` (``$RAY_ADDRESS``
            or a local instance); see :mod:`molgen.core.executors`.
        workers: Pool processes, or CPUs of a local Ray instance.
        chunk_size: Molecules per task.
        device: Where learned (predictor) components run: ``cpu`` (None),
            ``auto`` or ``cuda[:N]``.

    Returns:
        Counts and the best score.

    Raises:
        MolgenError: unreadable or unknown input, an output that is not
            ``.csv``, a missing ``id_column``, unknown objective, bad
            objective file or executor.
    """
    from molgen.datasets.readers import iter_labeled
    from molgen.scoring.parallel import ObjectiveSource, built_objective, forget_objective
    from molgen.workflows.streaming import stream_to_csv

    require_output_suffix(output, (".csv",))
    stream = iter_labeled(path, id_column)
    source = ObjectiveSource.of(objective, device)
    columns = score_columns(built_objective(source))  # a bad objective fails here, before any worker starts
    try:
        n, totals = stream_to_csv(stream, columns, score_smiles_part, lambda texts, errors: (source, texts, errors),
                                  Path(output), executor=executor, workers=workers, chunk_size=chunk_size,
                                  progress=progress, desc="scoring", failure="scoring failed")
    finally:
        forget_objective(source)
    counted = [part for part in totals if part is not None]
    best = max((b for _, b in counted if not math.isnan(b)), default=float("nan"))
    return ScoreSummary(n, sum(c for c, _ in counted), best, Path(output))
