"""Evaluate generated peptides (FASTA) against held-out AMPs and a training set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from molgen.core.errors import DataError, MolgenError
from molgen.core.serialization import write_json
from molgen.datasets.readers import FASTA_SUFFIXES, iter_records

if TYPE_CHECKING:
    from molgen.metrics import MetricReport

DEFAULT_PEPTIDE_REFERENCE = "amp-positive-test"
DEFAULT_PEPTIDE_TRAINING = "amp-positive-train"


def looks_like_fasta(path: str | Path) -> bool:
    """Whether ``path`` is a FASTA file by its suffix (``.gz`` allowed)."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in FASTA_SUFFIXES


def evaluate_peptide_file(
    generated: str | Path,
    *,
    reference: str | None = DEFAULT_PEPTIDE_REFERENCE,
    training: str | None = DEFAULT_PEPTIDE_TRAINING,
    reference_required: bool = False,
    training_required: bool = False,
    n: int | None = None,
    seed: int = 0,
    output: str | Path | None = None,
) -> "MetricReport":
    """Peptide metrics of a FASTA file (empty records count as invalid).

    Args:
        generated: FASTA file.
        reference: Held-out AMPs (name or path) for the property distances.
        training: Training sequences for novelty.
        reference_required, training_required: Fail instead of recording
            why a default set is unavailable.
        n: Only the first ``n`` records.
        seed: Seed of the diversity subsample.
        output: JSON report path.

    Returns:
        The report.
    """
    from molgen.datasets import load_texts
    from molgen.domains.protein import ProteinDomain
    from molgen.metrics.peptides import evaluate_peptides

    path = Path(generated)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    texts = [r.text for r in iter_records(path, fmt="fasta")]
    if not texts:
        raise DataError(f"{path} holds no FASTA records")
    if n is not None:
        texts = texts[:n]
    domain = ProteinDomain()
    sets, problems = {}, {}
    for role, source, required in (("reference", reference, reference_required), ("training", training, training_required)):
        if source is None:
            sets[role] = None
            continue
        try:
            sets[role] = load_texts(source, domain, on_invalid="skip").texts
        except MolgenError as exc:
            if required:
                raise
            sets[role], problems[role] = None, f"{source} unavailable: {exc}"
    report = evaluate_peptides(texts, sets["reference"], sets["training"], domain=domain, seed=seed)
    for name, reason in report.reasons.items():
        for role, problem in problems.items():
            if reason == f"no {role} set":
                report.reasons[name] = problem
    report.metadata.update({"domain": "protein", "generated_file": str(path), "reference_source": reference, "training_source": training})
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(output), report.to_dict())
    return report
