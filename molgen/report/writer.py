"""``write_report``: find what a source is, build its sections, write one
self-contained HTML file (atomically, never over the source)."""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from molgen.core.errors import MolgenError
from molgen.report.html import Page

#: Report kinds and what each reads.
KINDS = {
    "train": "training run directory (train_log.csv, run.json, model/)",
    "samples": "sample file (.smi, .csv, .txt, .fasta, .cif; or a folder of .cif files)",
    "evaluation": "evaluation report (.json written by molgen evaluate)",
    "optimize": "optimize run directory (progress.csv, summary.json, candidates.sqlite)",
    "discover": "discover run directory (rounds.csv, selected.csv, candidates.sqlite)",
    "demo": "molgen demo directory (demo.json, samples.smi, evaluation.json, optimize/)",
    "campaign": "ask/tell campaign directory (campaign.json, candidates.sqlite)",
}
TITLES = {"train": "Training run", "samples": "Samples", "evaluation": "Evaluation", "optimize": "Optimization run",
          "discover": "Discovery run", "demo": "molgen demo",
          "campaign": "Ask/tell campaign"}
DEMO_MARKER = "demo.json"
OUTPUT_SUFFIXES = (".html", ".htm")


@dataclass
class ReportSummary:
    """What :func:`write_report` wrote.

    Attributes:
        path: The HTML file.
        kind: ``train``, ``samples``, ``evaluation``, ``optimize``, ``discover`` or ``demo``.
        sections: Section headings, in page order.
        n_images: Inline images on the page.
    """

    path: Path
    kind: str
    sections: list[str] = field(default_factory=list)
    n_images: int = 0


def is_demo_dir(path: Path) -> bool:
    """A ``molgen demo`` directory (it holds the demo's marker file)."""
    return (path / DEMO_MARKER).is_file()


def _accepted() -> str:
    return "; ".join(KINDS.values())


def detect_kind(source: Path) -> str:
    """The report kind of ``source``, judged by its content.

    Raises:
        MolgenError: a missing path, or one that is none of :data:`KINDS`.
    """
    from molgen.report.campaign import is_campaign_run
    from molgen.report.discovery import is_discovery_run
    from molgen.report.optimization import is_optimize_run
    from molgen.datasets.readers import file_suffix
    from molgen.report.files import read_json_file
    from molgen.report.samples import SAMPLE_SUFFIXES, is_evaluation_report, is_sample_path
    from molgen.report.training import is_training_run

    if not source.exists():
        raise MolgenError(f"{source}: no such file or directory")
    if source.is_dir():
        # A demo holds an optimize run, and discovery runs hold a candidate store
        # too, so both are told apart before optimize runs.
        for kind, test in (("demo", is_demo_dir), ("campaign", is_campaign_run), ("discover", is_discovery_run), ("train", is_training_run),
                           ("optimize", is_optimize_run), ("samples", is_sample_path)):
            if test(source):
                return kind
        raise MolgenError(f"{source} is not a directory molgen can report on; expected one of: {_accepted()}")
    suffix = file_suffix(source)
    if suffix == ".json":
        if is_evaluation_report(read_json_file(source)):
            return "evaluation"
        raise MolgenError(f"{source} is JSON but no evaluation report (no 'metrics' table); expected one of: {_accepted()}")
    if suffix in SAMPLE_SUFFIXES:
        return "samples"
    raise MolgenError(f"{source}: cannot report on a {suffix or 'suffix-less'} file; expected one of: {_accepted()}")


def _reserve_output(output: Path, source: Path) -> Path:
    """Check that ``output`` can be written before any work is done, and
    reserve a temporary file next to it (renamed over it at the end)."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise MolgenError(f"{output}: the report is one HTML file; give the output a .html suffix")
    if output.is_dir():
        raise MolgenError(f"{output} is a directory; give a file name ending in .html")
    if output.exists() and output.resolve() == source.resolve():
        raise MolgenError(f"{output} is the source itself; choose another output file")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists() and not os.access(output, os.W_OK):
            raise PermissionError(f"{output} is read-only")
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise MolgenError(f"cannot write {output}: {exc.strerror or exc}") from None
    return Path(tmp)


def write_report(source: str | Path, output: str | Path, *, title: str | None = None, reference: str | None = None,
                 max_depictions: int = 48) -> ReportSummary:
    """Write a self-contained HTML report of a run or a file of generated objects.

    Args:
        source: A training run directory, a sample file (``molgen sample``
            output or a user's SMILES/FASTA/CIF file), an evaluation JSON
            (``molgen evaluate``), an optimize run directory or a discover run
            directory, or a ``molgen demo`` directory (its evaluation and its
            optimize run on one page); the kind is detected from the content.
        output: The ``.html`` file to write (its folder is created).
        title: Page title (default: the kind and the source's name).
        reference: Data set name or file whose property distributions are
            drawn under those of the generated objects (sample, evaluation
            and demo reports; a seeded subset of at most 2,000 molecules or peptides, or
            500 crystals).
        max_depictions: Most objects drawn (and listed, for sequences and
            crystals); 0 turns pictures off.

    Returns:
        The path, the kind, the section headings and the number of images.

    Raises:
        MolgenError: a missing or unrecognised source (the message lists the
            accepted kinds), an output that cannot be written or would replace
            the source, or an unreadable reference.
    """
    from molgen import __version__

    source, output = Path(source), Path(output)
    if not isinstance(max_depictions, int) or max_depictions < 0:
        raise MolgenError(f"max_depictions must be a non-negative integer, got {max_depictions!r}")
    kind = detect_kind(source)
    tmp = _reserve_output(output, source)
    try:
        if reference is not None:  # a typo in the reference fails before the slow part
            from molgen.datasets import resolve_source

            resolve_source(reference)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        page = Page(title or f"{TITLES[kind]}: {source.name or source}",
                    [f"source: {source}", f"kind: {KINDS[kind]}", f"written {stamp} by molgen {__version__}"])
        if reference is not None and kind not in ("samples", "evaluation", "demo"):
            page.header.append(f"reference {reference} not used: only sample and evaluation reports compare with one")
        _build(kind, page, source, reference, max_depictions)
        tmp.write_text(page.render(), encoding="utf-8")
        # mkstemp's file is private; a report keeps the mode of the file it replaces, else is world-readable.
        os.chmod(tmp, output.stat().st_mode & 0o777 if output.exists() else 0o644)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ReportSummary(output, kind, [s.heading for s in page.sections], page.n_images)


def _build(kind: str, page: Page, source: Path, reference: str | None, max_depictions: int) -> None:
    if kind == "train":
        from molgen.report.training import build_training

        build_training(page, source)
    elif kind == "samples":
        from molgen.report.samples import build_samples

        build_samples(page, source, reference=reference, max_depictions=max_depictions)
    elif kind == "evaluation":
        from molgen.report.files import read_json_file
        from molgen.report.samples import build_evaluation

        build_evaluation(page, source, read_json_file(source), reference=reference, max_depictions=max_depictions)
    elif kind == "optimize":
        from molgen.report.optimization import build_optimization

        build_optimization(page, source, max_depictions=max_depictions)
    elif kind == "discover":
        from molgen.report.discovery import build_discovery

        build_discovery(page, source, max_depictions=max_depictions)
    elif kind == "campaign":
        from molgen.report.campaign import build_campaign

        build_campaign(page, source, max_depictions=max_depictions)
    else:
        _build_demo(page, source, reference, max_depictions)


def _build_demo(page: Page, folder: Path, reference: str | None, max_depictions: int) -> None:
    """A demo directory: its evaluated samples, then its optimize run."""
    from molgen.report.optimization import build_optimization, is_optimize_run
    from molgen.report.files import read_json_file
    from molgen.report.samples import build_evaluation, build_samples

    if (folder / "evaluation.json").is_file():
        build_evaluation(page, folder / "evaluation.json", read_json_file(folder / "evaluation.json"), reference=reference,
                         max_depictions=max_depictions)
    elif (folder / "samples.smi").is_file():
        build_samples(page, folder / "samples.smi", reference=reference, max_depictions=max_depictions)
    else:
        page.section("Samples").note("The demo directory holds no evaluation.json or samples.smi (yet).")
    if is_optimize_run(folder / "optimize"):
        build_optimization(page, folder / "optimize", max_depictions=max_depictions)
    else:
        page.section("Optimization").note("The demo directory holds no optimize run (yet).")
