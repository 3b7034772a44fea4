"""Self-contained HTML reports (``molgen report``) of training runs, sample
files, evaluation reports, optimisation runs and discovery runs: one file,
inline styles and images, nothing fetched from anywhere.

Example::

    from molgen.report import write_report

    summary = write_report("runs/zinc", "zinc.html")
    print(summary.kind, summary.sections, summary.n_images)
"""

from molgen.report.writer import KINDS, ReportSummary, detect_kind, write_report

__all__ = ["KINDS", "ReportSummary", "detect_kind", "write_report"]
