"""Scoring: components wrapping properties, objectives that combine them into
a :class:`ScoreTable`, and an oracle that counts and caches calls under a
budget. Works on domain objects, never on a backbone's tensors."""

from molgen.scoring.components import (
    COMPONENT_TYPES,
    COMPONENTS,
    PropertyComponent,
    build_component,
)
from molgen.scoring.objective import (
    OBJECTIVES,
    Filter,
    Objective,
    ScoreTable,
    Term,
    get_objective,
)
from molgen.scoring.oracle import BudgetExhausted, Oracle

__all__ = [
    "COMPONENTS",
    "COMPONENT_TYPES",
    "Filter",
    "Term",
    "build_component",
    "OBJECTIVES",
    "BudgetExhausted",
    "Objective",
    "Oracle",
    "PropertyComponent",
    "ScoreTable",
    "get_objective",
]
