"""Scoring components: a named property evaluated over a batch of objects,
returning an array with NaN and a recorded reason where it failed."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from molgen.core.registry import Registry
from molgen.properties import molecular


class PropertyComponent:
    """A per-object property as a batch scoring component.

    Args:
        name: Component name (a column of the score table).
        fn: ``object -> float``; may raise on objects it cannot handle.
    """

    def __init__(self, name: str, fn: Callable[[Any], float]):
        self.name = name
        self.fn = fn

    def __call__(self, objs: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """Score ``objs`` (None entries are invalid objects).

        Returns:
            ``(values [N], reasons)``: NaN and a reason where scoring failed,
            None where it succeeded.
        """
        values = np.full(len(objs), np.nan)
        reasons: list[str | None] = [None] * len(objs)
        for i, obj in enumerate(objs):
            if obj is None:
                reasons[i] = "invalid object"
                continue
            try:
                value = float(self.fn(obj))
            except Exception as exc:  # a property failing on one object must not end the run
                reasons[i] = f"{self.name}: {type(exc).__name__}: {exc}"
                continue
            if math.isfinite(value):
                values[i] = value
            else:
                reasons[i] = f"{self.name}: non-finite value {value}"
        return values, reasons


#: Built-in components by name (molecule descriptors for now).
COMPONENTS: Registry = Registry("scoring component")
for _name, _fn in {
    "qed": molecular.qed,
    "logp": molecular.logp,
    "sa": molecular.sa_score,
    "molecular-weight": molecular.molecular_weight,
}.items():
    COMPONENTS.register(_name, PropertyComponent(_name, _fn))
