"""File evaluators, one per kind of object, chosen by what a file holds.

``molgen evaluate FILE`` and :func:`evaluate_any_file` ask each registered
evaluator in order whether the file is its kind (crystal files, FASTA
peptides); the molecule evaluator takes whatever is left. A new domain adds
its evaluator with :func:`register_evaluator` instead of another branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from molgen.core.device import select_device
from molgen.core.errors import MolgenError
from molgen.metrics import metric_names
from molgen.domains.crystal.io import looks_like_crystal_file
from molgen.workflows.crystal_evaluation import evaluate_crystal_file
from molgen.workflows.evaluation import DEFAULT_REFERENCE, DEFAULT_TRAINING, evaluate_file
from molgen.workflows.peptide_evaluation import (
    DEFAULT_PEPTIDE_REFERENCE,
    DEFAULT_PEPTIDE_TRAINING,
    evaluate_peptide_file,
    looks_like_fasta,
)


@dataclass
class EvaluationRequest:
    """What to evaluate and against what (the options of ``molgen evaluate``).

    Attributes:
        generated: The generated file.
        reference: Reference set (None: the evaluator's default).
        training: Training set for novelty (None: the evaluator's default).
        use_reference: False skips the reference metrics.
        use_training: False skips novelty.
        n: Only the first ``n`` entries.
        metrics: Molecule metric names (None: all).
        k: Molecule unique@k sizes.
        jobs: Worker processes (0: all cores).
        executor: Where the RDKit/pymatgen chunks run: ``process`` (a
            local pool of ``jobs``, default), ``serial`` or ``ray``.
        seed: Seed of reference subsets.
        device: Where learned metrics run.
        use_cache: Read and write cached statistics.
        output: JSON report path.
        preset: Crystal coverage cutoffs.
        progress: Show progress bars.
    """

    generated: str
    reference: str | None = None
    training: str | None = None
    use_reference: bool = True
    use_training: bool = True
    n: int | None = None
    metrics: list[str] | None = None
    k: tuple[int, ...] = (1000, 10000)
    jobs: int = 1
    executor: str = "process"
    seed: int = 42
    device: str = "cpu"
    use_cache: bool = True
    output: str | None = None
    preset: str | None = None
    progress: bool = True


@dataclass
class Evaluation:
    """An evaluator's result: the report, a one-line summary and the seconds taken."""

    report: Any
    summary: str
    seconds: float


@dataclass(frozen=True)
class FileEvaluator:
    """An evaluator for one domain's files.

    Attributes:
        domain: Domain name (for messages and listings).
        detects: ``path -> bool``: the file holds this domain's objects.
        evaluate: ``EvaluationRequest -> Evaluation``.
    """

    domain: str
    detects: Callable[[str | Path], bool]
    evaluate: Callable[[EvaluationRequest], Evaluation]


_EVALUATORS: list[FileEvaluator] = []


def register_evaluator(evaluator: FileEvaluator) -> None:
    """Add ``evaluator``, asked before the molecule evaluator (which takes any file).

    Args:
        evaluator: The evaluator of a domain's files.
    """
    _EVALUATORS.insert(len(_EVALUATORS) - 1, evaluator)


def evaluator_for(path: str | Path) -> FileEvaluator:
    """The first registered evaluator that recognises ``path`` (molecules last)."""
    for evaluator in _EVALUATORS:
        if evaluator.detects(path):
            return evaluator
    raise MolgenError(f"{path}: no evaluator recognises this file")  # unreachable while the fallback is registered


def evaluate_any_file(request: EvaluationRequest) -> Evaluation:
    """Evaluate ``request.generated`` with the evaluator of its kind.

    Raises:
        MolgenError: invalid options (``--jobs`` < 0, bad ``k`` or metric names).
    """
    if request.jobs < 0:
        raise MolgenError("--jobs must be >= 0")
    evaluator = evaluator_for(request.generated)
    if request.executor == "process":
        return evaluator.evaluate(request)
    from molgen.core.executors import make_executor
    from molgen.metrics.parallel import metrics_executor, resolve_jobs

    with make_executor(request.executor, resolve_jobs(request.jobs)) as executor, metrics_executor(executor):
        return evaluator.evaluate(request)


def _molecules(r: EvaluationRequest) -> Evaluation:
    if not r.k or min(r.k) < 1:
        raise MolgenError("--k needs positive integers")
    if r.metrics is not None:
        unknown = [name for name in r.metrics if name not in metric_names(r.k)]
        if unknown:
            raise MolgenError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(metric_names(r.k))}")
    report = evaluate_file(
        r.generated,
        reference=(r.reference or DEFAULT_REFERENCE) if r.use_reference else None,
        training=(r.training or DEFAULT_TRAINING) if r.use_training else None,
        reference_required=r.reference is not None,
        training_required=r.training is not None,
        n=r.n, metrics=r.metrics, k=r.k, n_jobs=r.jobs, use_cache=r.use_cache, seed=r.seed,
        device=str(select_device(r.device)), output=r.output, progress=r.progress,
    )
    meta = report.metadata
    summary = f"{meta['n']:,} generated entries, {meta['n_valid']:,} valid, {meta['n_unique']:,} distinct valid"
    return Evaluation(report, summary, meta["total_seconds"])


def _crystals(r: EvaluationRequest) -> Evaluation:
    report = evaluate_crystal_file(
        r.generated,
        reference=r.reference if r.use_reference else None,
        training=r.training if r.use_training else None,
        preset=r.preset, n=r.n, n_jobs=r.jobs, use_cache=r.use_cache, seed=r.seed, output=r.output,
    )
    meta = report.metadata
    summary = f"{meta['n_generated']:,} generated crystals, {meta.get('n_valid', 0):,} valid"
    return Evaluation(report, summary, meta.get("seconds", {}).get("total", 0.0))


def _peptides(r: EvaluationRequest) -> Evaluation:
    report = evaluate_peptide_file(
        r.generated,
        reference=(r.reference or DEFAULT_PEPTIDE_REFERENCE) if r.use_reference else None,
        training=(r.training or DEFAULT_PEPTIDE_TRAINING) if r.use_training else None,
        reference_required=r.reference is not None,
        training_required=r.training is not None,
        n=r.n, seed=r.seed, output=r.output,
    )
    meta = report.metadata
    summary = f"{meta['n_generated']:,} generated sequences, {meta['n_valid']:,} valid, {meta['n_distinct']:,} distinct valid"
    return Evaluation(report, summary, meta["seconds"])


_EVALUATORS.extend([
    FileEvaluator("crystal", looks_like_crystal_file, _crystals),
    FileEvaluator("protein", looks_like_fasta, _peptides),
    FileEvaluator("smiles", lambda path: True, _molecules),  # the fallback: SMILES/SDF files of any layout
])
