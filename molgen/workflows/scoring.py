"""Score a file of molecules with an objective (``molgen score``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from molgen.core.errors import MolgenError
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


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def _component_names(objective) -> tuple[list[str], list[str]]:
    """Weighted components, then filter-only ones (the table's column order)."""
    names = [t.component.name for t in objective.terms]
    return names, [n for n in dict.fromkeys(f.component.name for f in objective.filters) if n not in names]


def score_columns(objective) -> list[str]:
    """The output columns of :func:`score_file` after the identifier."""
    names, extra = _component_names(objective)
    return ["smiles", "valid", "score", *(f"{n}_raw" for n in names), *names, *(f"{n}_raw" for n in extra),
            "rejected_by", "reason"]


def score_smiles_part(payload: tuple) -> tuple[list[list[str]], list[float]]:
    """Executor task: parse and score one chunk of SMILES.

    Args:
        payload: ``(ObjectiveSource, texts, read_errors)``; a read error
            (an SD record RDKit rejected) makes its row invalid.

    Returns:
        One row of cells per text (the :func:`score_columns`), and the
        totals (NaN: no score).
    """
    from molgen.domains import SmilesDomain
    from molgen.scoring.parallel import built_objective

    source, texts, errors = payload
    domain = SmilesDomain()
    mols = [None if error else domain.try_parse(text) for text, error in zip(texts, errors)]
    objective = built_objective(source)
    table = objective(mols)
    names, extra = _component_names(objective)
    rows = [[text, str(int(mols[j] is not None)), _cell(table.total[j]),
             *(_cell(table.raw[n][j]) for n in names), *(_cell(table.transformed[n][j]) for n in names),
             *(_cell(table.raw[n][j]) for n in extra),
             table.rejected_by[j] or "", errors[j] or table.reasons[j] or ""]
            for j, text in enumerate(texts)]
    return rows, [float(t) for t in table.total]


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
    from molgen.core.executors import TaskFailure, make_executor, ordered_map
    from molgen.core.progress import progress_bar
    from molgen.datasets.readers import iter_labeled
    from molgen.scoring.parallel import ObjectiveSource, built_objective

    require_output_suffix(output, (".csv",))
    if chunk_size < 1 or workers < 1:
        raise MolgenError(f"chunk size and workers must be >= 1, got {chunk_size} and {workers}")
    stream = iter_labeled(path, id_column)
    source = ObjectiveSource.of(objective, device)
    columns = score_columns(built_objective(source))  # a bad objective fails here, before any worker starts
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    in_flight: list[tuple[list, list[str]]] = []  # (identifiers, texts) of the chunks in flight, in order

    def payloads():
        for chunk in _chunks(stream, chunk_size):
            texts = [r.text for r, _ in chunk]
            in_flight.append(([i for _, i in chunk], texts))
            yield source, texts, [r.error for r, _ in chunk]

    n, best, n_scored = 0, float("nan"), 0
    with make_executor(executor, workers) as pool, output.open("w", newline="") as handle, \
            progress_bar(None, desc="scoring", unit="mol", enabled=progress) as bar:
        writer = csv.writer(handle)
        id_name = stream.id_name if stream.id_name not in columns else "id"
        writer.writerow(([id_name] if stream.has_ids else []) + columns)
        for result in ordered_map(pool, score_smiles_part, payloads(), max(2, 4 * workers)):
            chunk_ids, texts = in_flight.pop(0)
            if isinstance(result, TaskFailure):  # the worker died: the rows are written with the reason
                blank = [""] * (len(columns) - 2)
                result = [[text, *blank, f"scoring failed in a worker: {result.error}"] for text in texts], []
            rows, totals = result
            writer.writerows([[chunk_ids[j], *row] for j, row in enumerate(rows)] if stream.has_ids else rows)
            finite = [t for t in totals if not math.isnan(t)]
            n, n_scored = n + len(rows), n_scored + len(finite)
            if finite and not max(finite) <= best:
                best = max(finite)
            bar.update(len(rows))
    return ScoreSummary(n, n_scored, best, output)


def _chunks(stream, size: int):
    chunk = []
    for pair in stream:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
