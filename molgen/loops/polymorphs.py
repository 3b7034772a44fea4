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
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Callable, Iterable, Literal, Sequence

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


def resample(model, cells: Sequence[str], config: PolymorphStageConfig, round_number: int,
             predict: Callable[..., list] | None = None) -> list:
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

    Returns:
        Structures (None where a text did not parse), up to ``config.samples``
        per cell, in order (substitution: fewer where fewer templates fit).
    """
    if config.method == "substitution":
        templates = substitution_templates(tuple(config.templates))
        return [s for cell in cells for s in substitutions(templates, cell, config.samples, config.max_atoms)]
    if predict is None:
        raise MolgenError('[discovery.polymorphs] method = "generator" needs a structure predictor '
                          "(molgen discover passes one; in Python, MaterialsDiscovery(structure_predictor=...))")
    out: list = []
    for cell in cells:
        seed = (config.seed + zlib.crc32(f"{round_number}:{cell}".encode())) % (2**31 - 1)
        out.extend(predict(model, cell, config.samples, seed=seed, temperature=config.temperature, batch_size=config.samples))
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


def substitutions(templates, cell: str, k: int, max_atoms: int) -> list:
    """The ``k`` cheapest substitutions for the formula of ``cell`` over every
    cell size up to ``max_atoms`` (a composition's known prototypes need not
    share the candidate's cell size), cheapest per site first.

    Args:
        templates: A :class:`~molgen.domains.crystal.substitution.SubstitutionTemplates`.
        cell: A cell formula such as ``"W2O6"``.
        k: Structures wanted.
        max_atoms: Largest cell tried.

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
    return [templates.substitute(i, mapping) for _, i, mapping in ranked[:k]]
