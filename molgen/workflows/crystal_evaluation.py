"""Evaluate generated crystals (a folder of CIFs, a CSV with a ``cif``
column, extended XYZ, or ``molgen sample`` text output) with the CDVAE
metric set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from molgen.core.errors import DataError
from molgen.core.serialization import write_json

if TYPE_CHECKING:
    from molgen.metrics import MetricReport


def read_generated_crystals(path: str | Path, n: int | None = None) -> list[str]:
    """Texts of the generated crystals in ``path`` (unparsable ones kept)."""
    from molgen.domains.crystal import iter_structure_texts

    path = Path(path)
    texts = [text for _, text, _ in iter_structure_texts(path)]
    if path.is_file() and path.suffix.lower() in (".cif", ".poscar", ".vasp"):
        _check_structure_file(path, texts)
    if n is not None:
        if n < 1:
            raise DataError("--n must be >= 1")
        texts = texts[:n]
    return texts


def _check_structure_file(path: Path, texts: list[str]) -> None:
    """A single structure file that holds no readable structure is the
    user's mistake (wrong file, partial occupancies, truncated), not "one
    invalid sample": say so, naming the file and the first reason."""
    from molgen.core.errors import ParseError
    from molgen.domains.crystal import CrystalDomain

    if not texts:
        raise DataError(f"{path}: holds no structure")
    domain = CrystalDomain()
    first = None
    for text in texts:
        try:
            domain.parse(text)
            return
        except ParseError as exc:
            first = first or str(exc)
    raise DataError(f"{path}: no readable structure ({first})")


def evaluate_crystal_file(
    generated: str | Path,
    *,
    reference: str | None = None,
    training: str | None = None,
    preset: str | None = None,
    n: int | None = None,
    n_samples: int | None = 1000,
    n_jobs: int = 1,
    use_cache: bool = True,
    seed: int = 0,
    output: str | Path | None = None,
) -> "MetricReport":
    """CDVAE metrics of a file or folder of generated crystals.

    Args:
        generated: Folder of CIFs, CSV with a ``cif`` column, ``.cif``,
            extended XYZ or compact-text file.
        reference: Reference crystals (data set name such as ``perov-5-test``, or a path).
        training: Training crystals for novelty.
        preset: Coverage cutoffs name (default: from the reference's name, else MP-20's).
        n: Evaluate only the first ``n`` generated entries.
        n_samples: Valid crystals drawn for the distribution distances (CDVAE: 1,000).
        n_jobs: Worker processes.
        use_cache: Cache reference fingerprints under ``MOLGEN_HOME``.
        seed: Seed of the draw.
        output: JSON report path.

    Returns:
        The report.
    """
    from molgen.metrics.crystals import (
        COVERAGE_PRESETS,
        CrystalEvalOptions,
        evaluate_crystals,
        preset_for,
    )

    texts = read_generated_crystals(generated, n)
    if preset is not None and preset not in COVERAGE_PRESETS:
        raise DataError(f"unknown coverage preset {preset!r}; valid: {', '.join(COVERAGE_PRESETS)}")
    cutoffs = COVERAGE_PRESETS[preset] if preset else preset_for(reference)
    report = evaluate_crystals(
        texts,
        _load_crystals(reference),
        _load_crystals(training),
        options=CrystalEvalOptions(cutoffs=cutoffs, n_samples=n_samples, seed=seed),
        n_jobs=n_jobs,
        cache_root="default" if use_cache else None,
    )
    report.metadata.update(
        {"domain": "crystal", "generated_file": str(generated), "reference_source": reference, "training_source": training}
    )
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(output, report.to_dict())
    return report


def _load_crystals(source: str | None) -> list[str] | None:
    if source is None:
        return None
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain

    path = Path(source)
    if path.is_dir() or (path.is_file() and path.suffix.lower() in (".cif", ".xyz", ".extxyz")):
        return read_generated_crystals(path)
    return load_texts(source, CrystalDomain(), on_invalid="skip", canonicalize=True).texts
