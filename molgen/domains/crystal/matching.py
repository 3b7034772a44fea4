"""What "the same crystal" means: equal reduced formula, then pymatgen's
``StructureMatcher`` with recorded tolerances."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Sequence

from pymatgen.core import Structure


@dataclass(frozen=True)
class MatcherSettings:
    """``StructureMatcher`` tolerances (pymatgen's defaults).

    Attributes:
        ltol: Fractional length tolerance.
        stol: Site tolerance (fraction of the average free length per atom).
        angle_tol: Angle tolerance in degrees.
        primitive_cell: Reduce to primitive cells before matching.
        scale: Scale volumes to match.
    """

    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0
    primitive_cell: bool = True
    scale: bool = True

    def matcher(self):
        """The configured ``StructureMatcher``."""
        from pymatgen.analysis.structure_matcher import StructureMatcher

        return StructureMatcher(**asdict(self))

    def to_dict(self) -> dict:
        """JSON-ready description, recorded with every report."""
        return asdict(self)


def formula_key(structure: Structure) -> str:
    """Reduced formula: crystals with different keys are never the same."""
    return structure.composition.reduced_formula


def same_structure(a: Structure, b: Structure, settings: MatcherSettings = MatcherSettings()) -> bool:
    """Whether ``a`` and ``b`` are the same crystal (same reduced formula and
    matched by ``StructureMatcher``)."""
    if formula_key(a) != formula_key(b):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(settings.matcher().fit(a, b))


def group_structures(structures: Sequence[Structure], settings: MatcherSettings = MatcherSettings()) -> list[int]:
    """Label each structure with the index of the first structure it matches.

    Matching runs only within a reduced-formula bucket, so the cost is the
    sum over buckets rather than all pairs.

    Returns:
        ``labels[i]``: index of the representative of structure ``i``.
    """
    buckets: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(structures):
        buckets[formula_key(s)].append(i)
    labels = list(range(len(structures)))
    matcher = settings.matcher()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for members in buckets.values():
            representatives: list[int] = []
            for i in members:
                for r in representatives:
                    if matcher.fit(structures[r], structures[i]):
                        labels[i] = r
                        break
                else:
                    representatives.append(i)
    return labels


class StructureIndex:
    """Distinct crystals seen so far, each under a stable key.

    ``domain.key`` is only the reduced formula; polymorphs share it. The index
    tells them apart with ``StructureMatcher`` inside each formula bucket and
    names the groups ``"<formula>"``, ``"<formula>#2"``, ``"<formula>#3"``...
    in the order they were first added, so a run that re-adds the same
    structures in the same order gets the same keys back.

    Args:
        settings: Matcher tolerances.
    """

    def __init__(self, settings: MatcherSettings = MatcherSettings()):
        self.settings = settings
        self._matcher = settings.matcher()
        self._buckets: dict[str, list[tuple[str, Structure]]] = defaultdict(list)
        self._rank: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def find(self, structure: Structure) -> str | None:
        """Key of the indexed crystal that ``structure`` matches, else None.

        Raises:
            DataError: a degenerate (collapsed) cell, on which pymatgen's Niggli
                reduction can run for hours.
        """
        from molgen.domains.crystal.graph import require_sound_cell

        require_sound_cell(structure, "not matched")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, known in self._buckets.get(formula_key(structure), ()):
                if self._matcher.fit(known, structure):
                    return key
        return None

    def add(self, structure: Structure, key: str | None = None) -> str:
        """Key of ``structure``: the matching group's, or a new one.

        Args:
            structure: The crystal.
            key: Force this key for a new group (restoring a stored index).

        Returns:
            The key.
        """
        found = self.find(structure)
        if found is not None:
            return found
        formula = formula_key(structure)
        bucket = self._buckets[formula]
        if key is None:
            key = formula if not bucket else f"{formula}#{len(bucket) + 1}"
        bucket.append((key, structure))
        self._rank[key] = len(bucket)
        return key

    def rank(self, key: str) -> int:
        """1-based order in which the group ``key`` joined its formula bucket
        (1: the first crystal of that formula, 2: its first polymorph, ...)."""
        return self._rank[key]
