"""Polymorph search inside a discovery round: the round's best compositions
sampled again in fresh structures (crystal structure prediction with the
generator's prior, :func:`~molgen.workflows.structure_prediction.predict_structures`).

Why: a generator that finds a promising composition writes it in one
arrangement, often not the lowest-energy one (and a candidate's stability
and properties belong to its structure). Resampling the composition with its
atoms fixed explores its polymorphs at the cost of ``samples`` decodes per
formula; the structures go through the same objective and store as the
round's own proposals (and on to relaxation when they rank among the best),
but not into the generator's update, whose samples must come from its
policy.
"""

from __future__ import annotations

import zlib
from typing import Sequence

from pydantic import Field

from molgen.core.config import StrictModel


class PolymorphStageConfig(StrictModel):
    """``[discovery.polymorphs]``: which compositions are resampled, and how often."""

    formulas: int = Field(0, ge=0, description="best new reduced formulas of a round (passing every filter) resampled "
                          "in fresh structures; 0: off")
    samples: int = Field(16, gt=0, description="structures sampled per formula, in the candidate's cell size")
    min_score: float = Field(0.0, description="only candidates whose cheap score exceeds this")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the text model")
    seed: int = Field(0, description="added to a per-round, per-formula seed (a resumed round resamples the same)")

    @property
    def active(self) -> bool:
        """Whether the run resamples anything."""
        return self.formulas > 0


def cell_formula(structure) -> str:
    """The formula of the whole cell, e.g. ``"W2O6"`` (not reduced)."""
    return "".join(f"{el.symbol}{int(round(n))}" for el, n in structure.composition.element_composition.items())


def chosen_cells(candidates: Sequence, domain, k: int) -> list[str]:
    """Cell formulas of the ``k`` best distinct reduced formulas.

    Args:
        candidates: Stored candidates, best first (``text`` of each).
        domain: The crystal domain (parses the texts).
        k: Formulas wanted.

    Returns:
        Cell formulas such as ``"W2O6"`` (the best candidate's cell size of each formula).
    """
    cells: dict[str, str] = {}
    for cand in candidates:
        structure = domain.try_parse(cand.text)
        if structure is None:
            continue
        reduced = structure.composition.reduced_formula
        if reduced not in cells:
            cells[reduced] = cell_formula(structure)
        if len(cells) == k:
            break
    return list(cells.values())


def resample(model, cells: Sequence[str], config: PolymorphStageConfig, round_number: int) -> list:
    """Fresh structures of each cell formula.

    Args:
        model: The generator that writes them (a crystal autoregressive or graph-diffusion model).
        cells: From :func:`chosen_cells`.
        config: Samples, temperature, seed.
        round_number: The discovery round (part of each formula's seed).

    Returns:
        Structures (None where a text did not parse), ``config.samples`` per cell, in order.
    """
    from molgen.workflows.structure_prediction import predict_structures

    out: list = []
    for cell in cells:
        seed = (config.seed + zlib.crc32(f"{round_number}:{cell}".encode())) % (2**31 - 1)
        out.extend(predict_structures(model, cell, config.samples, seed=seed, temperature=config.temperature,
                                      batch_size=config.samples))
    return out
