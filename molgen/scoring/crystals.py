"""Scoring components for crystals: validity, composition checks, novelty
against known structures, a table of known properties (the sanity oracle of
retrospective runs) and the band-gap predictor's outputs.

Components here are batch components (``objs -> (values, reasons)``) where a
model or an index works best over many structures at once; each takes its
settings from an objective TOML table (see :mod:`molgen.scoring.components`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.core.errors import DataError

#: Elements excluded by default from photovoltaic absorbers (toxic heavy metals).
TOXIC_ELEMENTS = ("Pb", "Cd", "Hg", "Tl")


class BatchComponent:
    """Base of batch components: applies :meth:`values` to the non-None
    objects and turns non-finite results into NaN with a reason."""

    name = "component"

    def values(self, objs: list[Any]) -> tuple[np.ndarray, list[str | None]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, objs: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """Score ``objs`` (None entries are invalid objects).

        Returns:
            ``(values [N], reasons)`` with NaN and a reason where scoring failed.
        """
        out = np.full(len(objs), np.nan)
        reasons: list[str | None] = ["invalid object" if o is None else None for o in objs]
        rows = [i for i, o in enumerate(objs) if o is not None]
        if rows:
            values, why = self.values([objs[i] for i in rows])
            for j, i in enumerate(rows):
                if why[j] is not None:
                    reasons[i] = f"{self.name}: {why[j]}"
                elif not math.isfinite(values[j]):
                    reasons[i] = f"{self.name}: non-finite value {values[j]}"
                else:
                    out[i] = values[j]
        return out, reasons


# -- per-structure checks -------------------------------------------------------
class StructureValidParams(StrictModel):
    min_distance: float = Field(0.5, ge=0, description="shortest allowed interatomic distance (A), periodic images included")
    min_volume: float = Field(0.1, ge=0, description="smallest allowed cell volume (A^3)")


class CompositionValidParams(StrictModel):
    pauling_test: bool = True
    single_element_valid: bool = True
    alloys_valid: bool = True


class ExcludedElementsParams(StrictModel):
    elements: list[str] = Field(default_factory=lambda: list(TOXIC_ELEMENTS), description="element symbols to count")


class AbundanceParams(StrictModel):
    pass


class ElementCountParams(StrictModel):
    pass


def structure_valid(p: StructureValidParams):
    """``Structure -> 1.0 / 0.0``: CDVAE's structural validity."""
    from molgen.domains.crystal.validity import ValidityRules, structure_is_valid

    rules = ValidityRules(min_distance=p.min_distance, min_volume=p.min_volume)
    return lambda s: float(structure_is_valid(s, rules))


def composition_valid(p: CompositionValidParams):
    """``Structure -> 1.0 / 0.0``: SMACT charge neutrality (+ electronegativity test)."""
    from molgen.domains.crystal.validity import ValidityRules, composition_is_valid

    rules = ValidityRules(pauling_test=p.pauling_test, single_element_valid=p.single_element_valid, alloys_valid=p.alloys_valid)
    return lambda s: float(composition_is_valid(s.composition, rules))


def excluded_elements(p: ExcludedElementsParams):
    """``Structure -> number of distinct excluded elements it contains``."""
    from pymatgen.core import Element

    unknown = [e for e in p.elements if not Element.is_valid_symbol(e)]
    if unknown:
        raise DataError(f"excluded_elements: unknown element symbols {unknown}")
    banned = set(p.elements)
    return lambda s: float(len({el.symbol for el in s.composition.elements} & banned))


def element_count(p: ElementCountParams):
    """``Structure -> number of distinct elements``: a filter ``max = 3`` keeps
    candidates in the binary/ternary chemistry that MP-20-biternary predictors
    and its convex hull cover (a quaternary faces no competing phases there,
    so its hull distance would flatter it)."""
    return lambda s: float(len(s.composition.elements))


def crustal_abundance(p: AbundanceParams):
    """``Structure -> smallest crustal abundance (ppm) among its elements``
    (SMACT's table): a filter ``min = ...`` keeps absorbers of abundant elements."""
    import smact

    def value(s) -> float:
        amounts = []
        for el in s.composition.elements:
            amount = smact.Element(el.symbol).crustal_abundance
            if amount is None:
                raise DataError(f"no crustal abundance for {el.symbol}")
            amounts.append(float(amount))
        return min(amounts)

    return value


# -- known structures -------------------------------------------------------------
class KnownStructuresParams(StrictModel):
    source: list[str] = Field(default_factory=lambda: ["perov-5-train"], description="registered data sets or CSV paths with a cif column")
    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0


class KnownPropertyParams(KnownStructuresParams):
    column: str = Field(description="property column of the source")
    fallback: Literal["none", "formula", "chemical_system", "nearest"] = Field(
        "none", description="a structure matching no known one: none: no score; formula: the median value of the "
        "known compounds of its reduced formula; chemical_system: that, else of the known compounds of its "
        "chemical system nearest in stoichiometry (L1 distance of atomic fractions); nearest: of the known "
        "compounds nearest in atomic fractions over every chemical system (shared elements count)")


def _known_structures(sources: Sequence[str], column: str | None, p: KnownStructuresParams):
    """A structure index over ``sources`` and, with ``column``, the value of each key
    (built once per process for the same sources, column and tolerances: parsing
    a few thousand crystals takes seconds, and a resumed run or a second
    objective asks for the same index)."""
    return _build_known_structures(tuple(sources), column, p.ltol, p.stol, p.angle_tol)


class KnownCompositions:
    """Tabulated values by composition: the fallback of
    :class:`KnownPropertyComponent` for structures that match no known one.

    Args:
        rows: ``(composition, value)`` of the known structures.
    """

    def __init__(self, rows: Sequence[tuple[Any, float]]):
        self.systems: dict[str, list[tuple[dict[str, float], float]]] = {}
        for composition, value in rows:
            fractions = {el.symbol: x for el, x in composition.fractional_composition.items()}
            self.systems.setdefault(composition.chemical_system, []).append((fractions, value))
        self._everything: tuple[list[tuple[dict[str, float], float]], dict[str, int], np.ndarray] | None = None

    def _all(self) -> tuple[list[tuple[dict[str, float], float]], dict[str, int], np.ndarray]:
        # Every known compound as a row of atomic fractions over all their elements (built on first use).
        if self._everything is None:
            known = [entry for entries in self.systems.values() for entry in entries]
            columns = {el: i for i, el in enumerate(sorted({el for f, _ in known for el in f}))}
            matrix = np.zeros((len(known), len(columns)))
            for row, (f, _) in enumerate(known):
                for el, x in f.items():
                    matrix[row, columns[el]] = x
            self._everything = (known, columns, matrix)
        return self._everything

    def _distances(self, composition, across_systems: bool = False) -> tuple[list[tuple[dict[str, float], float]], np.ndarray]:
        """L1 distance of atomic fractions to each known compound of the same
        chemical system, or (``across_systems``) of any system, over the union
        of both compounds' elements (2 for disjoint ones)."""
        fractions = {el.symbol: x for el, x in composition.fractional_composition.items()}
        if not across_systems:
            known = self.systems.get(composition.chemical_system, [])
            return known, np.array([sum(abs(fractions[e] - f.get(e, 0.0)) for e in fractions) for f, _ in known])
        known, columns, matrix = self._all()
        vector = np.zeros(matrix.shape[1])
        outside = 0.0  # the candidate's fractions of elements no known compound has
        for el, x in fractions.items():
            if el in columns:
                vector[columns[el]] = x
            else:
                outside += x
        return known, np.abs(matrix - vector).sum(axis=1) + outside

    def lookup(self, composition, same_formula_only: bool, across_systems: bool = False) -> tuple[float | None, str | None]:
        """``(value, None)``, or ``(None, reason)`` where no known compound qualifies.

        The median over the known compounds nearest in atomic fractions
        (distance 0: the same reduced formula, polymorphs included), within the
        chemical system unless ``across_systems``.
        """
        known, distances = self._distances(composition, across_systems)
        if known and (not same_formula_only or distances.min() <= 1e-6):
            nearest = distances <= distances.min() + 1e-6
            return float(np.median([v for (_, v), keep in zip(known, nearest) if keep])), None
        return None, "no known compound of this formula" if same_formula_only else "no known compound of this chemical system"

    def nearest_distance(self, composition, across_systems: bool = False) -> float | None:
        """L1 distance of atomic fractions to the nearest known compound of the
        chemical system (of any system with ``across_systems``; 0: a known
        formula), or None where there is none."""
        known, distances = self._distances(composition, across_systems)
        return float(distances.min()) if known else None


@lru_cache(maxsize=8)
def _build_known_structures(sources: tuple[str, ...], column: str | None, ltol: float, stol: float, angle_tol: float):
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.domains.crystal.matching import MatcherSettings, StructureIndex

    domain = CrystalDomain()
    index = StructureIndex(MatcherSettings(ltol=ltol, stol=stol, angle_tol=angle_tol))
    values: dict[str, float] = {}
    compositions: list[tuple[Any, float]] = []
    for source in sources:
        loaded = load_texts(source, domain, on_invalid="skip", targets=None if column is None else (column,))
        if column is not None and column not in loaded.targets:
            raise DataError(f"{source}: no column {column!r} (columns: {', '.join(loaded.targets) or 'none'})")
        for i, text in enumerate(loaded.texts):
            structure = domain.parse(text)
            key = index.add(structure)
            if column is None:  # compositions only (known_proximity)
                compositions.append((structure.composition, math.nan))
                continue
            value = float(loaded.targets[column][i])
            if math.isfinite(value):
                values.setdefault(key, value)
                compositions.append((structure.composition, value))
    return index, values, KnownCompositions(compositions)


class NoveltyComponent(BatchComponent):
    """1.0 for a structure that matches none of the reference data sets, else 0.0.

    Args:
        params: Reference data sets and ``StructureMatcher`` tolerances.
        name: Column name.
    """

    def __init__(self, params: KnownStructuresParams, name: str = "novelty"):
        self.name = name
        self.index, _, _ = _known_structures(params.source, None, params)

    def values(self, objs):
        out, why = np.full(len(objs), np.nan), [None] * len(objs)
        for i, s in enumerate(objs):
            try:
                out[i] = 0.0 if self.index.find(s) is not None else 1.0
            except Exception as exc:  # StructureMatcher on a degenerate cell: one failure, not a dead batch
                why[i] = f"matching failed: {type(exc).__name__}: {exc}"
        return out, why


class KnownPropertyComponent(BatchComponent):
    """The tabulated property of a known structure (matched by
    ``StructureMatcher``); NaN with the reason "not a known structure" for the
    rest, unless ``fallback`` scores them by composition. The sanity oracle of
    retrospective runs: the true gap instead of a predicted one. A generator
    rarely writes a known structure exactly (the MP-20 prior: 5 held-out ones
    in 2,048 samples), so an exact-match oracle alone gives reinforcement
    learning almost no signal; the composition fallback gives it one toward
    the compositions of known in-window compounds, while rediscovery is still
    judged by structure match.

    Args:
        params: Reference data sets, the property column and matcher tolerances.
        name: Column name.
    """

    def __init__(self, params: KnownPropertyParams, name: str = "known_property"):
        self.name = name
        self.index, self.table, self.compositions = _known_structures(params.source, params.column, params)
        self.fallback = params.fallback

    def values(self, objs):
        out, why = np.full(len(objs), np.nan), [None] * len(objs)
        for i, s in enumerate(objs):
            try:
                key = self.index.find(s)
            except Exception as exc:  # as in NoveltyComponent
                why[i] = f"matching failed: {type(exc).__name__}: {exc}"
                continue
            if key is not None and key in self.table:
                out[i] = self.table[key]
            elif self.fallback == "none":
                why[i] = "not a known structure"
            else:
                value, why[i] = self.compositions.lookup(s.composition, same_formula_only=self.fallback == "formula",
                                                         across_systems=self.fallback == "nearest")
                if value is not None:
                    out[i] = value
        return out, why


class KnownProximityParams(KnownStructuresParams):
    scale: float = Field(0.1, gt=0, description="L1 distance of atomic fractions at which proximity to the nearest "
                         "known formula falls by 1/e")
    polymorph: float = Field(0.5, ge=0, le=1, description="proximity of a known formula written in a structure that "
                             "matches none of its known ones (a matching structure scores 1)")
    across_systems: bool = Field(False, description="measure the distance to the nearest known formula of any "
                                 "chemical system (shared elements count), not only the candidate's own: a graded "
                                 "score everywhere instead of 0 outside the known systems")


class KnownProximityComponent(BatchComponent):
    """How close a structure is to the known compounds of the sources: 1 for
    a structure match, ``polymorph`` for a known formula in another structure,
    ``polymorph * exp(-d / scale)`` for a composition at L1 distance ``d``
    (atomic fractions) from the nearest known formula of its chemical system,
    0 outside the known chemical systems (``across_systems``: from the nearest
    known formula of any system, so every composition gets a graded score).

    Paired (geometric aggregate) with :class:`KnownPropertyComponent` and its
    composition fallback, it grades a sanity oracle: the fallback alone pays
    any stoichiometry of a chemical system as much as the known compound
    itself, so reinforcement learning drifts to new compositions near the
    known ones and never has a reason to write the known one. Outside
    retrospective tests, a low weight of it keeps a campaign near charted
    chemistry (with a ``max`` filter, away from it).

    Args:
        params: Reference data sets, decay scale and matcher tolerances.
        name: Column name.
    """

    def __init__(self, params: KnownProximityParams, name: str = "known_proximity"):
        self.name, self.params = name, params
        self.index, _, self.compositions = _known_structures(params.source, None, params)

    def values(self, objs):
        out, why = np.full(len(objs), np.nan), [None] * len(objs)
        for i, s in enumerate(objs):
            try:
                if self.index.find(s) is not None:
                    out[i] = 1.0
                    continue
            except Exception as exc:  # as in NoveltyComponent
                why[i] = f"matching failed: {type(exc).__name__}: {exc}"
                continue
            distance = self.compositions.nearest_distance(s.composition, self.params.across_systems)
            out[i] = 0.0 if distance is None else self.params.polymorph * math.exp(-distance / self.params.scale)
        return out, why


# -- band gaps -------------------------------------------------------------------------
GapOutput = Literal["gap", "expected", "p_nonmetal", "conditional", "std"]


class BandGapParams(StrictModel):
    path: str = Field(description="directory of a GapPredictor, or a shipped predictor name (perov5-gap)")
    output: GapOutput = Field(
        "gap", description="gap: the conditional gap where P(non-metal) >= decision, else 0; expected: P * gap; "
        "p_nonmetal; conditional: the gap a non-metal would have; std: the mixture's std")
    decision: float | None = Field(
        None, ge=0, le=1, description="P(non-metal) at which a structure counts as a non-metal (None: the model's "
        "decision_threshold, F1-optimal on its validation split)")


class GapDirectnessParams(StrictModel):
    direct: str = Field("perov5-gap", description="GapPredictor of the direct gap (directory or shipped name)")
    indirect: str = Field("perov5-ind-gap", description="GapPredictor of the indirect gap")


class BandGapComponent(BatchComponent):
    """One output of a :class:`~molgen.predictors.crystals.GapPredictor`.

    Args:
        params: Predictor directory and which output.
        name: Column name.
    """

    def __init__(self, params: BandGapParams, name: str = "band_gap"):
        from molgen.predictors.crystals import GapPredictor
        from molgen.pretrained.predictors import predictor_dir

        self.name, self.params = name, params
        self.model = GapPredictor.load(predictor_dir(params.path))
        self.decision = self.model.decision_threshold if params.decision is None else params.decision

    def values(self, objs):
        parts = self.model.predict_parts(objs)
        p, g = parts["p_nonmetal"], parts["gap_if_nonmetal"]
        if self.params.output == "gap":
            values = np.where(p >= self.decision, g, 0.0)
        elif self.params.output == "expected":
            values = p * g
        elif self.params.output == "p_nonmetal":
            values = p
        elif self.params.output == "conditional":
            values = g
        else:
            values = self.model.predict(objs)[1]
        return np.asarray(values, dtype=float), [None] * len(objs)


class GapDirectnessComponent(BatchComponent):
    """How far a gap is from direct, from two gap models: the predicted
    direct minus the predicted indirect non-metal gap (eV). At or below 0
    the fundamental gap is direct (strong absorption at the band edge); a
    ``linear_clamp`` transform from ``x_at_0 = 0.5`` to ``x_at_1 = 0`` turns
    it into a preference.

    Args:
        params: The two predictors.
        name: Column name.
    """

    def __init__(self, params: GapDirectnessParams, name: str = "gap_directness"):
        from molgen.predictors.crystals import GapPredictor
        from molgen.pretrained.predictors import predictor_dir

        self.name, self.params = name, params
        self.direct = GapPredictor.load(predictor_dir(params.direct))
        self.indirect = GapPredictor.load(predictor_dir(params.indirect))

    def values(self, objs):
        direct = self.direct.predict_parts(objs)["gap_if_nonmetal"]
        indirect = self.indirect.predict_parts(objs)["gap_if_nonmetal"]
        return np.asarray(direct - indirect, dtype=float), [None] * len(objs)


#: Crystal component types: name -> (settings model, builder of a per-object
#: function or of a batch component).
PER_OBJECT = {
    "structure_valid": (StructureValidParams, structure_valid),
    "composition_valid": (CompositionValidParams, composition_valid),
    "excluded_elements": (ExcludedElementsParams, excluded_elements),
    "crustal_abundance": (AbundanceParams, crustal_abundance),
    "element_count": (ElementCountParams, element_count),
}
BATCH = {
    "novelty": (KnownStructuresParams, NoveltyComponent),
    "known_property": (KnownPropertyParams, KnownPropertyComponent),
    "known_proximity": (KnownProximityParams, KnownProximityComponent),
    "band_gap": (BandGapParams, BandGapComponent),
    "gap_directness": (GapDirectnessParams, GapDirectnessComponent),
}
