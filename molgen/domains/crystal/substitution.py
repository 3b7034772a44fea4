"""Ion substitution of known structures: the baseline a crystal generator
must beat (Szymanski and Bartel 2023 found it often does better on
stability than generative models).

For a target composition, the templates are known structures with the same
stoichiometry pattern (the same multiset of per-element site counts, e.g.
1, 1, 3 for ABX3). Each template element is mapped onto a target element of
the same count; the mapping's cost is the count-weighted distance between the
elements in a standardised space of Pauling electronegativity, atomic radius,
period and group. The cheapest (template, mapping) pairs are the proposals:
the template with its species swapped and its volume scaled by the ratio of
summed atomic volumes (a relaxation, e.g. CHGNet, can refine it).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Sequence

import numpy as np
from pymatgen.core import Element, Structure

from molgen.core.errors import MolgenError

_MAX_PERMUTATIONS = 5_040  # 7 elements of one count: beyond that, templates are not tried exhaustively


def _raw_features(symbol: str) -> list[float]:
    element = Element(symbol)
    x = element.X
    radius = element.atomic_radius
    return [x if x is not None and math.isfinite(x) else math.nan,
            float(radius) if radius is not None else math.nan, float(element.row), float(element.group)]


def _feature_table() -> dict[str, np.ndarray]:
    symbols = [Element.from_Z(z).symbol for z in range(1, 104)]
    raw = np.array([_raw_features(s) for s in symbols], dtype=float)
    mean, std = np.nanmean(raw, axis=0), np.nanstd(raw, axis=0)
    filled = np.where(np.isnan(raw), mean, raw)
    return {s: row for s, row in zip(symbols, (filled - mean) / std)}


_FEATURES: dict[str, np.ndarray] | None = None


def element_features(symbol: str) -> np.ndarray:
    """Standardised (electronegativity, atomic radius, period, group) of an element."""
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = _feature_table()
    try:
        return _FEATURES[symbol]
    except KeyError:
        raise MolgenError(f"no substitution features for element {symbol!r} (elements H..Lr)") from None


def _pattern(counts: dict[str, int]) -> tuple[int, ...]:
    return tuple(sorted(counts.values()))


def _counts(structure: Structure) -> dict[str, int]:
    return {el.symbol: int(round(n)) for el, n in structure.composition.element_composition.items()}


class SubstitutionTemplates:
    """Known structures indexed by stoichiometry pattern, for proposals by substitution.

    Args:
        structures: Known (e.g. training) ordered structures.
    """

    def __init__(self, structures: Sequence[Structure]):
        self._by_pattern: dict[tuple[int, ...], list[int]] = defaultdict(list)
        self.structures = list(structures)
        self._counts = [_counts(s) for s in self.structures]
        for i, counts in enumerate(self._counts):
            self._by_pattern[_pattern(counts)].append(i)

    def propose(self, target: dict[str, int], k: int = 1) -> list[Structure]:
        """The ``k`` cheapest substitutions for ``target`` (element -> sites per cell).

        Returns:
            Up to ``k`` structures with exactly ``target``'s composition,
            cheapest first (fewer when fewer templates fit; none when no
            known structure has the pattern).
        """
        candidates = self.ranked(target)[:k]
        return [self.substitute(i, mapping) for _, i, mapping in candidates]

    def ranked(self, target: dict[str, int]) -> list[tuple[float, int, dict[str, str]]]:
        """Every (cost, template index, template element -> target element), cheapest first."""
        pattern = _pattern(target)
        wanted = {el: element_features(el) for el in target}
        by_count: dict[int, list[str]] = defaultdict(list)
        for el, n in target.items():
            by_count[n].append(el)
        out = []
        for i in self._by_pattern.get(pattern, ()):
            groups: dict[int, list[str]] = defaultdict(list)
            for el, n in self._counts[i].items():
                groups[n].append(el)
            best = None
            for mapping in _mappings(groups, by_count):
                cost = sum(target[new] * float(np.linalg.norm(element_features(old) - wanted[new])) for old, new in mapping.items())
                if best is None or cost < best[0]:
                    best = (cost, mapping)
            if best is not None:
                out.append((best[0], i, best[1]))
        out.sort(key=lambda item: (item[0], item[1]))
        return out

    def substitute(self, index: int, mapping: dict[str, str]) -> Structure:
        """Template ``index`` with its species swapped by ``mapping``, volume
        scaled by the summed atomic volumes of the new species."""
        template = self.structures[index]
        new = template.copy()
        new.replace_species(dict(mapping))
        old_volume = sum(_radius(site.specie.symbol) ** 3 for site in template)
        new_volume = sum(_radius(site.specie.symbol) ** 3 for site in new)
        if old_volume > 0 and new_volume > 0:
            new.scale_lattice(template.volume * new_volume / old_volume)
        return new


def _radius(symbol: str) -> float:
    radius = Element(symbol).atomic_radius
    return float(radius) if radius is not None else 1.5


def _mappings(template: dict[int, list[str]], target: dict[int, list[str]]):
    """Every mapping template element -> target element that keeps counts."""
    per_count = []
    for n, olds in template.items():
        news = target.get(n, [])
        if len(news) != len(olds):
            return
        options = list(itertools.islice(itertools.permutations(news), _MAX_PERMUTATIONS))
        per_count.append([dict(zip(olds, perm)) for perm in options])
    for parts in itertools.product(*per_count):
        mapping: dict[str, str] = {}
        for part in parts:
            mapping.update(part)
        yield mapping


def substitution_candidates(structures: Sequence[Structure], n: int, *, seed: int = 0, neighbours: int = 3,
                            elements: Sequence[str] | None = None) -> list[Structure]:
    """New crystals by one-element swaps of known structures (the ion-substitution
    baseline of unconditional generation).

    Each candidate takes a random known structure and one of its elements at
    random and replaces that element by one of its ``neighbours`` most similar
    elements (the distance of :func:`element_features`), keeping the
    structure and scaling its volume; a swap that gives a reduced formula
    already among the known structures (or already proposed) is drawn again.

    Args:
        structures: Known structures (e.g. the training set).
        n: Candidates wanted.
        seed: Seed of the draws.
        neighbours: Most similar elements a swap chooses from.
        elements: Elements a swap may introduce (default: those of ``structures``).

    Returns:
        Up to ``n`` structures (fewer only when the draws run dry).

    Raises:
        MolgenError: no structures or ``n`` < 1.
    """
    if not structures or n < 1:
        raise MolgenError("substitution_candidates needs known structures and n >= 1")
    rng = np.random.default_rng(seed)
    pool = sorted(set(elements) if elements else {el.symbol for s in structures for el in s.composition.elements})
    features = {el: element_features(el) for el in pool}
    nearest: dict[str, list[str]] = {}
    seen = {s.composition.reduced_formula for s in structures}
    templates = SubstitutionTemplates(structures)
    out: list[Structure] = []
    for _ in range(50 * n):
        if len(out) >= n:
            break
        index = int(rng.integers(len(structures)))
        present = sorted(templates._counts[index])
        old = present[int(rng.integers(len(present)))]
        if old not in nearest:
            others = [el for el in pool if el != old]
            base = element_features(old)
            nearest[old] = sorted(others, key=lambda el: float(np.linalg.norm(features[el] - base)))[:neighbours]
        choices = [el for el in nearest[old] if el not in present]
        if not choices:
            continue
        new = choices[int(rng.integers(len(choices)))]
        candidate = templates.substitute(index, {old: new})
        formula = candidate.composition.reduced_formula
        if formula in seen:
            continue
        seen.add(formula)
        out.append(candidate)
    return out
