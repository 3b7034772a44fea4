"""Plots for reports, drawn with matplotlib's Agg renderer and returned as
PNG bytes. matplotlib is imported on first use (importing
:mod:`molgen.report` stays cheap), and figures are made without pyplot, so
the caller's backend and open figures (a notebook's, say) are left alone."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

#: Colours of the generated and the reference distributions.
GENERATED = "#2b6cb0"
REFERENCE = "#dd6b20"


def _figure(size: tuple[float, float], layout: str | None = None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)  # an Agg canvas of its own: no window, no global state
    return fig


def plain(label: str) -> str:
    """``label`` with dollar signs escaped, so matplotlib never reads a path
    or a name as math text."""
    return str(label).replace("$", r"\$")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return buffer.getvalue()


def line_plot(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
              title: str = "", scatter: tuple[Sequence[float], Sequence[float], str] | None = None,
              size: tuple[float, float] = (6.4, 3.6)) -> bytes:
    """Lines of ``(label, x, y)`` with markers (one point is still visible),
    optionally over a faint scatter ``(x, y, label)``.

    Returns:
        PNG bytes.
    """
    fig = _figure(size, layout="constrained")
    ax = fig.subplots()
    if scatter is not None and len(scatter[0]):
        ax.scatter(scatter[0], scatter[1], s=6, alpha=0.25, color="#718096", label=plain(scatter[2]), linewidths=0)
    for label, x, y in series:
        ax.plot(x, y, marker="o", markersize=3, linewidth=1.5, label=plain(label))
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    if title:
        ax.set_title(plain(title))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def histograms(panels: Sequence[tuple[str, np.ndarray, np.ndarray | None]], generated_label: str = "generated",
               reference_label: str = "reference", columns: int = 2, bins: int = 40) -> bytes:
    """One small histogram per ``(name, generated values, reference values
    or None)``, both normalised to densities over shared bins so sets of
    different sizes compare.

    Returns:
        PNG bytes.
    """
    rows = (len(panels) + columns - 1) // columns
    fig = _figure((3.4 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    # Fixed margins: a constrained layout of many panels costs more than the drawing.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1 if rows > 1 else 0.14, top=0.92 if rows > 1 else 0.88, wspace=0.28, hspace=0.45)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, gen, ref) in zip(axes.flat, panels):
        gen = np.asarray(gen, dtype=float)
        gen = gen[np.isfinite(gen)]
        ref = None if ref is None else np.asarray(ref, dtype=float)
        ref = None if ref is None else ref[np.isfinite(ref)]
        pooled = np.concatenate([gen, ref]) if ref is not None else gen
        if not len(pooled):
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(plain(name), fontsize="medium")
            continue
        lo, hi = np.percentile(pooled, [0.5, 99.5]) if len(pooled) > 20 else (pooled.min(), pooled.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        if ref is not None and len(ref):
            ax.hist(np.clip(ref, lo, hi), bins=edges, density=True, alpha=0.45, color=REFERENCE,
                    label=f"{plain(reference_label)} ({len(ref)})")
        if len(gen):
            ax.hist(np.clip(gen, lo, hi), bins=edges, density=True, histtype="step", linewidth=1.6, color=GENERATED,
                    label=f"{plain(generated_label)} ({len(gen)})")
        ax.set_title(plain(name), fontsize="medium")
        ax.tick_params(labelsize="small")
        ax.legend(fontsize="x-small")
    return _png(fig)


def grouped_bars(groups: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str, ylabel: str,
                 log: bool = False) -> bytes:
    """Bars of each series side by side within each group (e.g. the funnel
    stages within each round).

    Returns:
        PNG bytes.
    """
    width = min(14.0, max(7.4, 2.4 + 0.12 * len(groups) * len(series)))
    fig = _figure((width, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(groups))
    step = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series):
        ax.bar(x - 0.4 + step * (i + 0.5), values, width=step, label=plain(label))
    ax.set_xticks(x, [plain(g) for g in groups])
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel) + (" (symmetric log scale)" if log else ""))
    if log:
        ax.set_yscale("symlog", linthresh=1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)
