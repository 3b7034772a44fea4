"""The photovoltaic presets' round report: how many valid, novel candidates
of a discovery round have a (predicted) band gap inside the absorber window.

The discovery loop (:class:`~molgen.loops.discovery.MaterialsDiscovery`)
knows nothing of band gaps; a preset's ``[discovery.report]`` table builds
this report and the loop adds its columns to ``rounds.csv``,
``selected.csv`` and ``summary.json``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.loops.discovery import RoundReport, component_value
from molgen.loops.store import Candidate


class GapWindowReportConfig(StrictModel):
    """Which score-table columns the per-round report reads."""

    valid: list[str] = Field(default_factory=lambda: ["structure_valid", "composition_valid"], description="filters meaning 'valid'")
    novel: str | None = Field("novelty", description="filter meaning 'novel' (None or \"\": no novelty column)")
    gap: str = Field("gap_if_nonmetal", description="component whose raw value is the (predicted) gap")
    nonmetal: str | None = Field(
        "p_nonmetal", description="component holding P(non-metal): the predicted gap is the gap column where it "
        "reaches `decision`, else 0 (None or \"\": the gap column is the gap)")
    decision: float | None = Field(
        None, ge=0, le=1, description="P(non-metal) threshold (None: the decision threshold of the gap model behind "
        "the `nonmetal` component, else 0.5)")
    window: tuple[float, float] = (1.1, 1.8)

    def build(self, objective) -> "GapWindowReport":
        """The report of a run with ``objective`` (it keeps reading these settings, not a copy)."""
        return GapWindowReport(self, objective)


class GapWindowReport(RoundReport):
    """Counts valid, novel candidates whose predicted gap lies in the window.

    Args:
        config: Its settings.
        objective: The run's cheap objective (its gap model gives the default decision threshold).
    """

    def __init__(self, config: GapWindowReportConfig, objective):
        self.config = config
        self.objective = objective

    def decision_threshold(self) -> float:
        """P(non-metal) from which the report calls a candidate a non-metal."""
        rep = self.config
        if rep.decision is not None:
            return rep.decision
        for term in self.objective.terms:
            if term.component.name == rep.nonmetal:
                decision = getattr(term.component, "decision", None)
                return 0.5 if decision is None else float(decision)
        return 0.5

    def predicted_gap(self, components: dict) -> float:
        """The gap the report counts: the gap column, zeroed where P(non-metal) is below the decision."""
        rep = self.config
        gap = component_value(components, rep.gap)
        if rep.nonmetal and not component_value(components, rep.nonmetal) >= self.decision_threshold():
            return 0.0
        return gap

    def round_stats(self, new: list[Candidate], passes: Callable[[dict, str], bool]) -> dict[str, Any]:
        """Valid, valid-and-novel and in-window counts and rates of the round's new candidates."""
        rep = self.config
        lo, hi = rep.window
        valid = [c for c in new if all(passes(c.components, v) for v in rep.valid)]
        valid_novel = [c for c in valid if not rep.novel or passes(c.components, rep.novel)]
        gaps = np.array([self.predicted_gap(c.components) for c in valid_novel], dtype=float)
        in_window = int(np.sum((gaps >= lo) & (gaps <= hi)))
        return {
            "valid": len(valid), "valid_novel": len(valid_novel), "in_window": in_window,
            "validity": len(valid) / max(1, len(new)), "novelty_of_valid": len(valid_novel) / max(1, len(valid)),
            "in_window_fraction": in_window / max(1, len(valid_novel)),
        }

    def line(self, row: dict[str, Any]) -> str:
        """``in-window a/b valid novel (x %)``."""
        return f"in-window {row['in_window']}/{row['valid_novel']} valid novel ({100 * row['in_window_fraction']:.1f} %)"

    def candidate_fields(self, components: dict) -> dict[str, Any]:
        """``predicted_gap`` of a selected candidate."""
        return {"predicted_gap": self.predicted_gap(components)}

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The in-window fraction by round and the report settings (with the decision threshold used)."""
        return {
            "in_window_fraction_by_round": [float(r["in_window_fraction"]) for r in rows],
            "report": {**self.config.model_dump(mode="json"), "decision_used": self.decision_threshold()},
        }
