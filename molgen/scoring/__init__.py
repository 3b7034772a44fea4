"""Scoring: components wrapping properties, objectives that combine them into
a :class:`ScoreTable`, and an oracle that counts and caches calls under a
budget. Works on domain objects, never on a backbone's tensors."""

from molgen.scoring.components import COMPONENTS, PropertyComponent
from molgen.scoring.objective import OBJECTIVES, Objective, ScoreTable, get_objective
from molgen.scoring.oracle import BudgetExhausted, Oracle

__all__ = [
    "COMPONENTS",
    "OBJECTIVES",
    "BudgetExhausted",
    "Objective",
    "Oracle",
    "PropertyComponent",
    "ScoreTable",
    "get_objective",
]
