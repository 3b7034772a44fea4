"""Stream a user's file through an executor into a CSV: read a chunk, run it
as one task, write its rows, in input order, with flat memory however long
the file is (``molgen score`` and ``molgen predict``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from molgen.core.errors import MolgenError


def format_cell(value: float) -> str:
    """A number as a CSV cell: empty for NaN, else 6 significant digits."""
    return "" if math.isnan(value) else f"{value:.6g}"


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stream_to_csv(stream, columns: Sequence[str], task: Callable[[tuple], tuple[list[list[str]], Any]],
                  payload: Callable[[list[str], list[str | None]], tuple], output: Path, *, executor: str = "serial",
                  workers: int = 1, chunk_size: int = 1024, progress: bool = False, desc: str = "",
                  failure: str = "failed") -> tuple[int, list[Any]]:
    """Run ``task`` over the chunks of ``stream`` and write one CSV.

    Args:
        stream: A :class:`~molgen.datasets.readers.LabeledStream`.
        columns: The columns after the identifier; the first is the input
            text, the last the reason a row has no value.
        task: A picklable top-level function: ``payload -> (rows, extra)``,
            rows holding the cells of ``columns``.
        payload: ``(texts, read_errors) -> payload`` of one chunk.
        output: The CSV.
        executor: ``serial``, ``process`` or ``ray``.
        workers: Pool processes or local Ray CPUs.
        chunk_size: Entries per task.
        progress: Progress bar.
        desc: The bar's label.
        failure: What failed, for the reason of a chunk whose task failed
            (``"<failure> in a worker: <error>"``); its ``extra`` is None.

    Returns:
        ``(rows written, each chunk's extra)``.

    Raises:
        MolgenError: non-positive ``chunk_size`` or ``workers``, unknown executor.
    """
    from molgen.core.executors import TaskFailure, make_executor, ordered_map
    from molgen.core.progress import progress_bar

    if chunk_size < 1 or workers < 1:
        raise MolgenError(f"chunk size and workers must be >= 1, got {chunk_size} and {workers}")
    output.parent.mkdir(parents=True, exist_ok=True)
    in_flight: list[tuple[list, list[str]]] = []  # (identifiers, texts) of the chunks read, in order; never shipped

    def payloads():
        for chunk in chunked(stream, chunk_size):
            texts = [record.text for record, _ in chunk]
            in_flight.append(([ident for _, ident in chunk], texts))
            yield payload(texts, [record.error for record, _ in chunk])

    n, extras = 0, []
    with make_executor(executor, workers) as pool, output.open("w", newline="") as handle, \
            progress_bar(None, desc=desc, unit="entry", enabled=progress) as bar:
        writer = csv.writer(handle)
        writer.writerow(([stream.id_name if stream.id_name not in columns else "id"] if stream.has_ids else []) + list(columns))
        for result in ordered_map(pool, task, payloads(), max(2, 4 * workers)):
            ids, texts = in_flight.pop(0)
            if isinstance(result, TaskFailure):  # its rows are kept, with the reason
                blank = [""] * (len(columns) - 2)
                result = [[text, *blank, f"{failure} in a worker: {result.error}"] for text in texts], None
            rows, extra = result
            writer.writerows([[ids[j], *row] for j, row in enumerate(rows)] if stream.has_ids else rows)
            n += len(rows)
            extras.append(extra)
            bar.update(len(rows))
    return n, extras
