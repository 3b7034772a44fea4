"""Polymorph search inside a discovery round: the round's best compositions
proposed again in fresh structures (crystal structure prediction), either
sampled from the generator's prior with the atoms fixed
(:func:`~molgen.workflows.structure_prediction.predict_structures`) or by ion
substitution into known structures of the same stoichiometry
(:class:`~molgen.domains.crystal.substitution.SubstitutionTemplates`, the
cheapest element mappings over cell sizes up to ``max_atoms``).

Why: a generator that finds a promising composition writes it in one
arrangement, often not the lowest-energy one (and a candidate's stability
and properties belong to its structure). Resampling the composition with its
atoms fixed explores its polymorphs at the cost of ``samples`` decodes per
formula; the structures go through the same objective and store as the
round's own proposals (and on to relaxation when they rank among the best).
They enter the generator's update only with ``learn = true`` (off-policy:
the policy did not sample them).

With ``neighbours`` the stage also proposes each chosen formula's nearest
formulas by one-element swap (Cu2S2 -> Cu2Se2, Ag2S2, ...), and with
``frontier = "run"`` it chooses among the best formulas of the whole run not
resampled before: together a best-first local search in composition space,
the way substitution-driven screens explore around a hit (known compounds
come in isostructural families).
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Callable, Container, Iterable, Literal, Sequence

import numpy as np
from pydantic import Field, model_validator

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError


class PolymorphStageConfig(StrictModel):
    """``[discovery.polymorphs]``: which compositions are resampled, and how often."""

    formulas: int = Field(0, ge=0, description="best new reduced formulas of a round (passing every filter) resampled "
                          "in fresh structures; 0: off")
    samples: int = Field(16, gt=0, description="structures sampled per formula, in the candidate's cell size")
    min_score: float = Field(0.0, description="only candidates whose cheap score exceeds this")
    method: Literal["generator", "substitution"] = Field(
        "generator", description="generator: the prior samples the cell with its atoms fixed; substitution: the cheapest "
        "ion substitutions into the known structures of `templates`")
    templates: list[str] = Field(default_factory=list, description="substitution: registered crystal data sets or CSV "
                                 "files whose structures are the templates (e.g. the generator's training set)")
    max_atoms: int = Field(20, gt=0, description="substitution: largest cell tried (every multiple of the formula up to it)")
    neighbours: int = Field(0, ge=0, description="also resample each chosen formula's nearest new formulas by one-element "
                            "swap (same site counts; the element distance of ion substitution): a local search in "
                            "composition space around the best candidates")
    frontier: Literal["round", "run"] = Field(
        "round", description="round: the round's own best new formulas; run: the best formulas of the whole run so far "
        "(proposals and earlier resampled structures) resampled fewer than `depth` times, a best-first search")
    depth: int = Field(1, gt=0, description='frontier = "run": times a formula may be chosen, each time with the next '
                       "`samples` structures (substitution: the next-cheapest), so a formula that keeps scoring "
                       "best gets its structures searched deeper")
    learn: bool = Field(False, description="also update the generator on the resampled structures and their rewards "
                        "(off-policy, as REINVENT's experience replay learns from sequences it did not just sample)")
    temperature: float = Field(1.0, gt=0, description="generator: sampling temperature of the text model")
    seed: int = Field(0, description="generator: added to a per-round, per-formula seed (a resumed round resamples the same)")

    @model_validator(mode="after")
    def _templates_for_substitution(self):
        if self.active and self.method == "substitution" and not self.templates:
            raise ValueError('method = "substitution" needs templates = [data sets of known structures]')
        return self

    @property
    def active(self) -> bool:
        """Whether the run resamples anything."""
        return self.formulas > 0


def cell_formula(structure) -> str:
    """The formula of the whole cell, e.g. ``"W2O6"`` (not reduced)."""
    return "".join(f"{el.symbol}{int(round(n))}" for el, n in structure.composition.element_composition.items())


def chosen_cells(structures: Iterable, k: int) -> list[str]:
    """Cell formulas of the ``k`` best distinct reduced formulas.

    Args:
        structures: Candidates' structures, best first (None entries are
            skipped; a lazy iterable stops being read at the ``k``-th formula).
        k: Formulas wanted.

    Returns:
        Cell formulas such as ``"W2O6"`` (the best candidate's cell size of each formula).
    """
    cells: dict[str, str] = {}
    for structure in structures:
        if len(cells) == k:
            break
        if structure is not None:
            cells.setdefault(structure.composition.reduced_formula, cell_formula(structure))
    return list(cells.values())


def reduced_formula(cell: str) -> str:
    """The reduced formula of a cell formula (``"W2O6"`` -> ``"WO3"``)."""
    from pymatgen.core import Composition

    return Composition(cell).reduced_formula


@lru_cache(maxsize=1)
def _default_pool() -> tuple[str, ...]:
    from pymatgen.core import Element

    symbols = (Element.from_Z(z).symbol for z in range(1, 84) if not 57 <= z <= 71)
    return tuple(sym for sym in symbols if sym not in {"He", "Ne", "Ar", "Kr", "Xe"})


def element_pool(config: PolymorphStageConfig) -> tuple[str, ...]:
    """Elements a neighbour swap may bring in: those of the substitution
    templates when there are any (swaps stay in the chemistry the templates
    can build), else H..Bi without noble gases and lanthanides."""
    if not config.templates:
        return _default_pool()
    structures = substitution_templates(tuple(config.templates)).structures
    return tuple(sorted({el.symbol for s in structures for el in s.composition.elements}))


def neighbour_cells(cell: str, k: int, pool: Sequence[str], skip: Container[str]) -> list[str]:
    """The ``k`` nearest formulas to ``cell`` by swapping one element for
    another of ``pool`` (the site counts kept), nearest swap first.

    Args:
        cell: A cell formula such as ``"Cu2S2"``.
        k: Formulas wanted.
        pool: Elements a swap may bring in.
        skip: Reduced formulas not to propose.

    Returns:
        Up to ``k`` cell formulas (e.g. ``"Ni2S2"`` before ``"Co2S2"``) of distinct reduced formulas.
    """
    from pymatgen.core import Composition

    from molgen.domains.crystal.substitution import element_features

    counts = {el.symbol: int(round(n)) for el, n in Composition(cell).items()}
    swaps = sorted((float(np.linalg.norm(element_features(old) - element_features(new))), old, new)
                   for old in counts for new in pool if new not in counts)
    out: list[str] = []
    seen: set[str] = set()
    for _, old, new in swaps:
        if len(out) == k:
            break
        swapped = "".join(f"{new if el == old else el}{n}" for el, n in counts.items())
        formula = reduced_formula(swapped)
        if formula not in skip and formula not in seen:
            seen.add(formula)
            out.append(swapped)
    return out


def plan_cells(structures: Iterable, config: PolymorphStageConfig, resampled: dict[str, int],
               pool: Sequence[str]) -> list[tuple[str, str, int]]:
    """The cells a round resamples: the best formulas, then their neighbours.

    Args:
        structures: Candidates' structures, best first (as for :func:`chosen_cells`).
        config: ``formulas``, ``neighbours``, ``frontier``, ``depth``, ``samples``.
        resampled: Reduced formula -> how often earlier rounds resampled it.
            With ``frontier = "run"`` a formula is chosen while that is below
            ``depth``; neighbours are formulas never resampled. Updated with
            this round's.
        pool: Elements a neighbour swap may bring in (:func:`element_pool`).

    Returns:
        ``(cell formula, "chosen" or "neighbour", offset)``, chosen first; the
        offset skips the structures earlier rounds took (times resampled x
        ``samples``: the next-cheapest substitutions).
    """
    if config.frontier == "run":
        structures = (s for s in structures
                      if s is not None and resampled.get(s.composition.reduced_formula, 0) < config.depth)
    plan = []
    for cell in chosen_cells(structures, config.formulas):
        formula = reduced_formula(cell)
        plan.append((cell, "chosen", resampled.get(formula, 0) * config.samples))
        resampled[formula] = resampled.get(formula, 0) + 1
    for cell, _, _ in list(plan):
        for neighbour in neighbour_cells(cell, config.neighbours, pool, resampled):
            plan.append((neighbour, "neighbour", 0))
            resampled[reduced_formula(neighbour)] = 1
    return plan


def resample(model, cells: Sequence[str], config: PolymorphStageConfig, round_number: int,
             predict: Callable[..., list] | None = None, offsets: Sequence[int] | None = None) -> list:
    """Fresh structures of each cell formula.

    Args:
        model: The generator that writes them (a crystal autoregressive or
            graph-diffusion model; not used by ``method = "substitution"``).
        cells: From :func:`chosen_cells`.
        config: Method, samples, temperature, seed.
        round_number: The discovery round (part of each formula's seed).
        predict: ``method = "generator"``: crystal structure prediction,
            ``(model, formula, n, seed=, temperature=, batch_size=) -> structures``
            (:func:`molgen.workflows.structure_prediction.predict_structures`;
            passed in because loops sit below workflows).
        offsets: ``method = "substitution"``: per cell, how many of the
            cheapest substitutions to skip (those an earlier round took).

    Returns:
        Structures (None where a text did not parse), up to ``config.samples``
        per cell, in order (substitution: fewer where fewer templates fit).
    """
    if config.method == "substitution":
        templates = substitution_templates(tuple(config.templates))
        offsets = offsets or [0] * len(cells)
        return [s for cell, offset in zip(cells, offsets)
                for s in substitutions(templates, cell, config.samples, config.max_atoms, offset)]
    if predict is None:
        raise MolgenError('[discovery.polymorphs] method = "generator" needs a structure predictor '
                          "(molgen discover passes one; in Python, MaterialsDiscovery(structure_predictor=...))")
    out: list = []
    for cell in cells:
        seed = (config.seed + zlib.crc32(f"{round_number}:{cell}".encode())) % (2**31 - 1)
        try:
            out.extend(predict(model, cell, config.samples, seed=seed, temperature=config.temperature, batch_size=config.samples))
        except MolgenError:  # a neighbour formula this model cannot write (an element a graph model never saw, too many sites)
            continue
    return out


@lru_cache(maxsize=4)
def substitution_templates(sources: tuple[str, ...]):
    """The known structures of ``sources`` as substitution templates (read once per process)."""
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.domains.crystal.substitution import SubstitutionTemplates

    domain = CrystalDomain()
    structures = [s for source in sources for s in load_texts(source, domain, on_invalid="skip", keep_objects=True).objects]
    return SubstitutionTemplates(structures)


def substitutions(templates, cell: str, k: int, max_atoms: int, offset: int = 0) -> list:
    """The ``k`` cheapest substitutions for the formula of ``cell`` over every
    cell size up to ``max_atoms`` (a composition's known prototypes need not
    share the candidate's cell size), cheapest per site first.

    Args:
        templates: A :class:`~molgen.domains.crystal.substitution.SubstitutionTemplates`.
        cell: A cell formula such as ``"W2O6"``.
        k: Structures wanted.
        max_atoms: Largest cell tried.
        offset: Cheapest substitutions to skip.

    Returns:
        Up to ``k`` structures of the formula.
    """
    from pymatgen.core import Composition

    reduced = Composition(cell).reduced_composition
    base = {el.symbol: int(round(n)) for el, n in reduced.items()}
    per_unit = sum(base.values())
    ranked = []
    for z in range(1, max_atoms // per_unit + 1):
        target = {el: n * z for el, n in base.items()}
        ranked += [(cost / (per_unit * z), i, mapping) for cost, i, mapping in templates.ranked(target)]
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [templates.substitute(i, mapping) for _, i, mapping in ranked[offset:offset + k]]
