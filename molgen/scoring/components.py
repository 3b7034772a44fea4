"""Scoring components: a named property evaluated over a batch of objects,
returning an array with NaN and a recorded reason where it failed, and the
factory that builds components from objective specs (TOML tables)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Callable, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator

from molgen.core.config import StrictModel, validate
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.registry import Registry
from molgen.scoring.crystals import BATCH as CRYSTAL_BATCH
from molgen.scoring.crystals import PER_OBJECT as CRYSTAL_PER_OBJECT


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


# -- component factories ------------------------------------------------------
# Each builder takes the component's own settings (validated by its model) and
# returns the ``object -> float`` function.


class _NoParams(StrictModel):
    pass


class SimilarityParams(StrictModel):
    references: list[str] | str
    fingerprint: str = "ECFP4"
    aggregate: Literal["max", "mean"] = "max"


class SmartsParams(StrictModel):
    smarts: str
    inverse: bool = False


class IsomerParams(StrictModel):
    formula: str
    mean: Literal["geometric", "arithmetic"] = "geometric"


class AtomCountParams(StrictModel):
    element: str


class AlertParams(StrictModel):
    catalog: str = "PAINS"


class DockingParams(StrictModel):
    target: str
    num_cpus: int | None = Field(1, gt=0)
    seed: int = 974528263


class ExternalParams(StrictModel):
    command: list[Annotated[str, Field(min_length=1)]] | Annotated[str, Field(min_length=1)] = Field(
        description="program and arguments (a non-empty list, or a string split like a shell)")
    timeout: float = Field(60.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(256, gt=0)
    max_output_bytes: int = Field(16 * 2**20, gt=0, description="most bytes of the program's output read per batch")

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("command must name a program (got an empty list)")
        if isinstance(value, str) and not value.strip():
            raise ValueError("command must name a program (got a blank string)")
        return value


class PredictorParams(StrictModel):
    path: str = Field(description="directory of a trained predictor")
    target: str | None = None
    statistic: Literal["mean", "std", "ucb", "lcb", "ad"] = Field(
        "mean", description="ad: max Tanimoto to the predictor's training set (applicability domain)")
    beta: float = 1.0
    per_atom: bool = Field(False, description="divide by the number of sites (models of a per-cell crystal property)")
    require_in_domain: bool = Field(False, description="score molecules out of the predictor's applicability domain as NaN")


class TableParams(StrictModel):
    source: str = Field(description="registered data set or CSV path")
    column: str = Field(description="column of the values")
    smiles_column: str | None = None


def _table(p: TableParams):
    from molgen.scoring.lookup import TableLookup

    return TableLookup(p.source, p.column, p.smiles_column)


def _descriptor(name: str):
    def build(params: _NoParams):
        from molgen.scoring.molecules import DESCRIPTORS

        return DESCRIPTORS[name]

    return build


def _similarity(p: SimilarityParams):
    from molgen.scoring.similarity import TanimotoSimilarity

    return TanimotoSimilarity(p.references, p.fingerprint, p.aggregate).value


def _smarts(p: SmartsParams):
    from molgen.scoring.molecules import SmartsMatch

    return SmartsMatch(p.smarts, p.inverse)


def _isomer(p: IsomerParams):
    from molgen.scoring.molecules import IsomerScore

    return IsomerScore(p.formula, p.mean)


def _atom_count(p: AtomCountParams):
    from molgen.scoring.molecules import atom_count

    return atom_count(p.element)


def _alerts(p: AlertParams):
    from molgen.scoring.molecules import alert_count

    return alert_count(p.catalog)


def _docking(p: DockingParams):
    from molgen.scoring.docking import DockingScore

    return DockingScore(p.target, p.num_cpus, p.seed)


def _rule(name: str):
    def build(params: _NoParams):
        from molgen.scoring import molecules

        return getattr(molecules, f"{name}_pass")

    return build


#: Component types: name -> (settings model, builder). Builders import their
#: chemistry lazily so that importing molgen.scoring stays cheap.
COMPONENT_TYPES: Registry = Registry("scoring component type")
for _name in ("qed", "sa", "logp", "molecular_weight", "tpsa", "hbd", "hba", "rotatable_bonds", "rings",
              "aromatic_rings", "heavy_atoms", "bertz", "atoms_with_h"):
    COMPONENT_TYPES.register(_name, (_NoParams, _descriptor(_name)))
COMPONENT_TYPES.register("similarity", (SimilarityParams, _similarity))
COMPONENT_TYPES.register("smarts", (SmartsParams, _smarts))
COMPONENT_TYPES.register("isomer", (IsomerParams, _isomer))
COMPONENT_TYPES.register("atom_count", (AtomCountParams, _atom_count))
COMPONENT_TYPES.register("alerts", (AlertParams, _alerts))
COMPONENT_TYPES.register("docking", (DockingParams, _docking))
COMPONENT_TYPES.register("table", (TableParams, _table))
COMPONENT_TYPES.register("lipinski", (_NoParams, _rule("lipinski")))
COMPONENT_TYPES.register("veber", (_NoParams, _rule("veber")))
for _name, _entry in CRYSTAL_PER_OBJECT.items():
    COMPONENT_TYPES.register(_name, _entry)


def build_component(kind: str, params: dict[str, Any], name: str | None = None, where: str = "component"):
    """Build a component of type ``kind`` from its settings.

    Args:
        kind: A registered component type (``qed``, ``similarity``, ...).
        params: The type's settings (unknown keys are errors).
        name: Column name (default: the type).
        where: Context for error messages.

    Returns:
        A batch component (``objs -> (values, reasons)``).

    Raises:
        ConfigError: unknown type or bad settings, naming them.
    """
    if kind == "predictor" or kind.startswith("predictor:"):
        from molgen.scoring.learned import PredictorComponent

        settings = dict(params)
        if kind.startswith("predictor:"):
            settings.setdefault("path", kind.split(":", 1)[1])
        p = validate(PredictorParams, settings, where=where)
        try:
            return PredictorComponent(p.path, name=name or "predictor", target=p.target, statistic=p.statistic, beta=p.beta,
                                      per_atom=p.per_atom, require_in_domain=p.require_in_domain)
        except MolgenError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if kind == "external":
        from molgen.scoring.external import ExternalCommand

        p = validate(ExternalParams, params, where=where)
        return ExternalCommand(p.command, name=name or "external", timeout=p.timeout, batch_size=p.batch_size,
                               max_output_bytes=p.max_output_bytes)
    if kind in CRYSTAL_BATCH:
        params_cls, component_cls = CRYSTAL_BATCH[kind]
        settings = validate(params_cls, params, where=where)
        try:
            return component_cls(settings, name=name or kind)
        except MolgenError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    try:
        params_cls, builder = COMPONENT_TYPES.get(kind)
    except MolgenError as exc:
        raise ConfigError(f"{where}: {exc}; or external, predictor (predictor:DIR), {', '.join(CRYSTAL_BATCH)}") from None
    settings = validate(params_cls, params, where=where)
    try:
        fn = builder(settings)
    except MolgenError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return PropertyComponent(name or kind, fn)


#: Ready-made parameter-free components by name (``qed``, ``logp``, ...).
COMPONENTS = Registry("scoring component")
for _name, (_params, _builder) in list(COMPONENT_TYPES.items()):
    if _params is _NoParams:
        COMPONENTS.register(_name, PropertyComponent(_name, _builder(_NoParams())))
