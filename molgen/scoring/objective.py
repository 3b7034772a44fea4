"""Objectives: components, each with a transform and a weight, aggregated
into one score, plus hard filters; built in Python, from a TOML file or by
name from the registry of named objectives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import ConfigDict, Field

from molgen.core.config import StrictModel, read_toml, validate
from molgen.core.errors import ConfigError
from molgen.core.registry import Registry
from molgen.scoring.aggregators import AGGREGATORS
from molgen.scoring.components import COMPONENTS, build_component
from molgen.scoring.transforms import Identity, TransformSpec


@dataclass
class ScoreTable:
    """Scores of a batch of objects.

    Attributes:
        raw: Component name -> raw values ``[N]`` (NaN where it failed).
        transformed: Component name -> desirability after its transform.
        total: The objective ``[N]``: NaN where a weighted component failed,
            0 where a filter rejected the object.
        reasons: Per object, why it has no total (None when it has one).
        rejected_by: Per object, the filter that rejected it (or None).
        seconds: Component name -> wall time it took on this batch.
    """

    raw: dict[str, np.ndarray]
    transformed: dict[str, np.ndarray]
    total: np.ndarray
    reasons: list[str | None] = field(default_factory=list)
    rejected_by: list[str | None] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.total)


@dataclass
class Term:
    """One weighted component of an objective."""

    component: Any
    weight: float = 1.0
    transform: Any = field(default_factory=Identity)


@dataclass
class Filter:
    """A hard constraint: the component's raw value must lie in ``[min, max]``."""

    component: Any
    min: float | None = None
    max: float | None = None

    def passes(self, values: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(values)
        if self.min is not None:
            ok &= values >= self.min
        if self.max is not None:
            ok &= values <= self.max
        return ok


class Objective:
    """Transforms each component, aggregates them (higher is better) and
    zeroes objects that fail a filter.

    Args:
        terms: :class:`Term` objects or ``(component, weight)`` pairs; a
            component may be a registered parameter-free name (``"qed"``).
        aggregate: ``"arithmetic"`` or ``"geometric"`` weighted mean.
        filters: Hard constraints.
        name: Name for reports.

    Raises:
        ConfigError: no terms, a non-positive weight or duplicate names.
    """

    def __init__(self, terms: Sequence[Term | tuple], aggregate: str = "arithmetic", filters: Sequence[Filter] = (), name: str = "objective"):
        if not terms:
            raise ConfigError("an objective needs at least one component")
        if aggregate not in AGGREGATORS:
            raise ConfigError(f"unknown aggregate {aggregate!r}; use {' or '.join(AGGREGATORS)}")
        self.terms = [t if isinstance(t, Term) else Term(COMPONENTS.get(t[0]) if isinstance(t[0], str) else t[0], float(t[1])) for t in terms]
        names = [t.component.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ConfigError(f"component names must be unique (give each a name): {names}")
        for t in self.terms:
            if not 0 < t.weight < float("inf"):
                raise ConfigError(f"component {t.component.name!r}: weight must be positive and finite, got {t.weight}")
        self.aggregate = aggregate
        self.filters = list(filters)
        self.name = name
        self.weights = np.array([t.weight for t in self.terms])

    def __call__(self, objs: Sequence[Any]) -> ScoreTable:
        """Score ``objs`` (None entries are invalid objects)."""
        n = len(objs)
        raw, transformed = {}, {}
        reasons: list[str | None] = [None] * n
        seconds: dict[str, float] = {}
        for term in self.terms:
            start = time.perf_counter()
            values, why = term.component(objs)
            seconds[term.component.name] = time.perf_counter() - start
            raw[term.component.name] = values
            transformed[term.component.name] = term.transform(values)
            for i, reason in enumerate(why):
                if reason is not None and reasons[i] is None:
                    reasons[i] = reason
        matrix = np.stack([transformed[t.component.name] for t in self.terms], axis=1) if n else np.zeros((0, len(self.terms)))
        total = AGGREGATORS[self.aggregate](matrix, self.weights) if n else np.zeros(0)
        rejected: list[str | None] = [None] * n
        for f in self.filters:
            start = time.perf_counter()
            values, why = f.component(objs)
            seconds[f.component.name] = time.perf_counter() - start
            raw.setdefault(f.component.name, values)
            ok = f.passes(values)
            for i in np.flatnonzero(~ok):
                if rejected[i] is None and objs[i] is not None:
                    rejected[i] = f.component.name
                    if np.isfinite(total[i]):
                        total[i] = 0.0
        return ScoreTable(raw, transformed, total, reasons, rejected, seconds)

    # -- from specs ---------------------------------------------------------
    @classmethod
    def from_spec(cls, data: dict[str, Any], where: str = "objective") -> "Objective":
        """Build from a dict shaped like the TOML file (see :class:`ObjectiveSpec`).

        Raises:
            ConfigError: naming the bad key, component type, SMARTS or weight.
        """
        spec = validate(ObjectiveSpec, data, where=where)
        terms = []
        for i, c in enumerate(spec.components):
            at = f"{where}: components[{i}] ({c.type})"
            if not 0 < c.weight < float("inf"):
                raise ConfigError(f"{at}: weight must be positive and finite, got {c.weight}")
            component = build_component(c.type, dict(c.model_extra or {}), c.name, where=at)
            terms.append(Term(component, c.weight, c.transform or Identity()))
        filters = []
        for i, f in enumerate(spec.filters):
            at = f"{where}: filters[{i}] ({f.type})"
            if f.min is None and f.max is None:
                raise ConfigError(f"{at}: give min and/or max")
            filters.append(Filter(build_component(f.type, dict(f.model_extra or {}), f.name, where=at), f.min, f.max))
        return cls(terms, spec.aggregate, filters, spec.name)

    @classmethod
    def from_toml(cls, path: str | Path) -> "Objective":
        """Read an objective TOML file (see :class:`ObjectiveSpec`)."""
        return cls.from_spec(read_toml(path), where=str(path))


class ComponentSpec(StrictModel):
    """One ``[[components]]`` table: ``type``, optional ``name``, ``weight``
    and ``transform``; every other key is a setting of the component type."""

    model_config = ConfigDict(extra="allow")

    type: str
    name: str | None = None
    weight: float = 1.0
    transform: TransformSpec | None = None


class FilterSpec(StrictModel):
    """One ``[[filters]]`` table: a component whose raw value must lie in ``[min, max]``."""

    model_config = ConfigDict(extra="allow")

    type: str
    name: str | None = None
    min: float | None = None
    max: float | None = None


class ObjectiveSpec(StrictModel):
    """An objective file::

        name = "soft-drug-like"
        aggregate = "geometric"
        [[components]]
        type = "qed"
        [[components]]
        type = "similarity"
        references = ["CC(=O)Oc1ccccc1C(=O)O"]
        fingerprint = "ECFP4"
        transform = { type = "clipped", upper_x = 0.7 }
        [[filters]]
        type = "alerts"
        catalog = "PAINS"
        max = 0
    """

    name: str = "objective"
    aggregate: Literal["arithmetic", "geometric"] = "arithmetic"
    components: list[ComponentSpec] = Field(min_length=1)
    filters: list[FilterSpec] = Field(default_factory=list)


#: Named objectives: name -> zero-argument factory.
OBJECTIVES: Registry = Registry("objective", autoload=("molgen.scoring.named",))


def get_objective(name_or_path: str | Path) -> Objective:
    """A fresh objective: a registered name (``qed``, ``pmo/median1``,
    ``guacamol/...``) or the path of a TOML file.

    Raises:
        RegistryError: unknown name, listing the valid ones.
        ConfigError: a bad TOML file.
    """
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        return Objective.from_toml(text)
    return OBJECTIVES.get(text)()
