"""Objectives: weighted combinations of components, evaluated to a score table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from molgen.core.registry import Registry
from molgen.scoring.components import COMPONENTS, PropertyComponent


@dataclass
class ScoreTable:
    """Scores of a batch of objects.

    Attributes:
        components: Component name -> values ``[N]`` (NaN where it failed).
        total: The objective ``[N]`` (NaN where any weighted component failed).
        reasons: Per object, why it has no total (None when it has one).
    """

    components: dict[str, np.ndarray]
    total: np.ndarray
    reasons: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.total)


class Objective:
    """Weighted arithmetic mean of components (higher is better).

    Args:
        components: ``(component, weight)`` pairs; a component is a
            :class:`PropertyComponent` or a registered component name.
        name: Name for reports.
    """

    def __init__(self, components: Sequence[tuple[PropertyComponent | str, float]], name: str = "objective"):
        if not components:
            raise ValueError("an objective needs at least one component")
        self.parts = [(COMPONENTS.get(c) if isinstance(c, str) else c, float(w)) for c, w in components]
        self.name = name

    def __call__(self, objs: Sequence[Any]) -> ScoreTable:
        """Score ``objs`` (None entries are invalid objects)."""
        values: dict[str, np.ndarray] = {}
        reasons: list[str | None] = [None] * len(objs)
        total = np.zeros(len(objs))
        weight_sum = sum(w for _, w in self.parts)
        for component, weight in self.parts:
            column, why = component(objs)
            values[component.name] = column
            total += weight * column
            for i, reason in enumerate(why):
                if reason is not None and reasons[i] is None:
                    reasons[i] = reason
        return ScoreTable(values, total / weight_sum, reasons)


#: Named objectives.
OBJECTIVES: Registry = Registry("objective")
OBJECTIVES.register("qed", lambda: Objective([("qed", 1.0)], name="qed"))
OBJECTIVES.register("logp", lambda: Objective([("logp", 1.0)], name="logp"))


def get_objective(name: str) -> Objective:
    """A fresh instance of the named objective.

    Raises:
        RegistryError: unknown name, listing the valid ones.
    """
    return OBJECTIVES.get(name)()
