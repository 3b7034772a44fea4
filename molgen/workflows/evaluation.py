"""Evaluate a file of generated molecules against reference and training sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from molgen.core.errors import DataError, MolgenError
from molgen.core.serialization import write_json
from molgen.datasets.loading import resolve_source
from molgen.datasets.readers import read_records, require_output_suffix

if TYPE_CHECKING:
    from molgen.metrics import MetricReport

DEFAULT_REFERENCE = "moses-test"
DEFAULT_TRAINING = "moses-train"


@dataclass
class LoadedSet:
    """Texts of a reference/training source, or why it is unavailable."""

    name: str
    texts: list[str] | None
    problem: str | None = None


def read_generated(path: str | Path, n: int | None = None) -> list[str]:
    """The generated SMILES of a file, in order, invalid ones kept.

    Blank lines, ``#`` comments and a ``smiles`` header are skipped; ``.csv``
    files are read from their ``smiles`` column (so ``molgen sample`` output
    in any of its formats works); SD files give one SMILES per record, and a
    record RDKit cannot read is an empty (invalid) entry.

    Args:
        path: ``.smi``, ``.txt``, ``.csv`` or ``.sdf`` (optionally gzipped).
        n: Keep only the first ``n`` entries.

    Raises:
        DataError: missing, unreadable, empty or unknown file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    texts = [record.text for record in read_records(path)]
    if n is not None:
        if n < 1:
            raise DataError("--n must be >= 1")
        texts = texts[:n]
    return texts


def load_optional_set(source: str | None, *, required: bool) -> LoadedSet | None:
    """Read a reference/training data set or file.

    Args:
        source: Data set name or path; None: not wanted.
        required: Raise when it cannot be read (the user named it), instead of
            recording why (a default that is not available here).
    """
    if source is None:
        return None
    try:
        path, spec = resolve_source(source)
        records = read_records(path, fmt=spec.fmt if spec else None, column=spec.column if spec else None)
    except MolgenError as exc:
        if required:
            raise
        return LoadedSet(source, None, f"{source} unavailable: {exc}")
    return LoadedSet(source, [record.text for record in records])


def evaluate_file(
    generated: str | Path,
    *,
    reference: str | None = DEFAULT_REFERENCE,
    training: str | None = DEFAULT_TRAINING,
    reference_required: bool = False,
    training_required: bool = False,
    n: int | None = None,
    metrics: Sequence[str] | None = None,
    k: Sequence[int] = (1000, 10000),
    n_jobs: int = 1,
    use_cache: bool = True,
    seed: int = 42,
    device: str = "cpu",
    output: str | Path | None = None,
    progress: bool = False,
) -> "MetricReport":
    """Evaluate a generated file; optionally write the JSON report.

    Args:
        generated: File of generated SMILES (or an SD file).
        reference: Reference set (name or path); None: skip reference metrics.
        training: Training set for novelty; None: skip novelty.
        reference_required: Fail (instead of reporting null metrics) when the
            reference cannot be read.
        training_required: Same for the training set.
        n: Evaluate only the first ``n`` generated entries.
        metrics: Metric names (default all).
        k: ``unique@k`` sizes.
        n_jobs: Worker processes.
        use_cache: Cache reference/training statistics under ``MOLGEN_HOME``.
        seed: Seed of GuacaMol's reference subsets.
        device: Where ChemNet runs.
        output: JSON file to write (``.json``; NaN written as null).
        progress: Show a bar over the metrics (on a terminal).

    Returns:
        The report; its metadata names the files and sources used.

    Raises:
        DataError: unreadable input or an output that is not ``.json``.
    """
    from molgen.metrics import FeatureOptions, GuacamolProtocol, evaluate_molecules

    if output is not None:
        require_output_suffix(output, (".json",), "report")
    texts = read_generated(generated, n)
    ref = load_optional_set(reference, required=reference_required)
    train = load_optional_set(training, required=training_required)
    report = evaluate_molecules(
        texts,
        None if ref is None else ref.texts,
        None if train is None else train.texts,
        metrics=metrics,
        k=k,
        n_jobs=n_jobs,
        cache_root="default" if use_cache else None,
        options=FeatureOptions(),
        protocol=GuacamolProtocol(seed=seed),
        device=device,
        progress=progress,
    )
    for loaded, role in ((ref, "reference"), (train, "training")):
        if loaded is not None and loaded.problem:
            for name, reason in report.reasons.items():
                if reason == f"no {role} set given":
                    report.reasons[name] = loaded.problem
    report.metadata["generated_file"] = str(generated)
    report.metadata["reference_source"] = None if ref is None else ref.name
    report.metadata["training_source"] = None if train is None else train.name
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(output, report.to_dict())
    return report
