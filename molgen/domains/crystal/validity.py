"""CDVAE's validity rules for crystals: structural (no two atoms closer than
0.5 A under periodic boundaries, a non-degenerate cell) and compositional
(SMACT charge neutrality plus the Pauling electronegativity test)."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache, reduce

import numpy as np
from pymatgen.core import Composition, Structure


@dataclass(frozen=True)
class ValidityRules:
    """The rules deciding whether a crystal is valid (CDVAE's defaults).

    Attributes:
        min_distance: Shortest allowed interatomic distance (A), periodic images included.
        min_volume: Smallest allowed cell volume (A^3).
        pauling_test: Require oxidation states that pass the electronegativity test.
        single_element_valid: A one-element crystal is compositionally valid.
        alloys_valid: A crystal made only of metals is compositionally valid.
        max_oxidation_threshold: Largest stoichiometric coefficient SMACT may use
            (None: the largest count of the reduced formula, as CDVAE does).
    """

    min_distance: float = 0.5
    min_volume: float = 0.1
    pauling_test: bool = True
    single_element_valid: bool = True
    alloys_valid: bool = True
    max_oxidation_threshold: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready description, recorded with every report."""
        return asdict(self)


def structure_is_valid(structure: Structure, rules: ValidityRules = ValidityRules()) -> bool:
    """Structural validity: every periodic interatomic distance and the volume
    are at least the rule's minimum.

    Args:
        structure: The crystal.
        rules: Thresholds.

    Returns:
        True when structurally valid.
    """
    volume = structure.volume
    if not math.isfinite(volume) or volume < rules.min_volume:
        return False
    if len(structure) == 1:
        # A lone atom only meets its own images, one lattice vector away.
        return bool(min(structure.lattice.abc) >= rules.min_distance)
    if _thinnest_height(structure) < rules.min_distance:
        # The LLL-reduced cell is the same crystal with a compact basis.
        structure = structure.get_reduced_structure("LLL")
    if _thinnest_height(structure) >= rules.min_distance:
        return _min_distance_27_images(structure) >= rules.min_distance
    # Pairs within the cutoff via pymatgen's cell-list search. It includes an
    # atom's own periodic images, which CDVAE's minimum-image distance matrix
    # misses, and excludes the atom itself.
    distances = structure.get_neighbor_list(rules.min_distance)[3]
    return not bool(np.any(distances < rules.min_distance))


_IMAGES = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=float)


def _min_distance_27_images(structure: Structure) -> float:
    """Shortest distance between two atoms or an atom and its own image,
    searched over the 27 neighbouring cells. Exact for the question "is any
    distance below the thinnest cell height": a farther image is displaced by
    more than one height across some pair of faces. A cell-list search
    instead costs time in proportion to the cell volume, which explodes on
    the huge or flat cells an untrained generator emits."""
    frac = np.mod(structure.frac_coords, 1.0)
    diff = frac[None, :, None, :] - frac[:, None, None, :] + _IMAGES[None, None, :, :]
    dist = np.linalg.norm(diff @ structure.lattice.matrix, axis=-1)  # [N, N, 27]
    n = len(frac)
    dist[np.arange(n), np.arange(n), 13] = np.inf  # the atom itself (image 0, 0, 0)
    return float(dist.min())


def _thinnest_height(structure: Structure) -> float:
    """Smallest distance between opposite faces of the cell (A)."""
    m = structure.lattice.matrix
    areas = [np.linalg.norm(np.cross(m[i], m[j])) for i, j in ((1, 2), (0, 2), (0, 1))]
    return float(structure.volume / max(max(areas), 1e-12))


def reduced_counts(composition: Composition) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Element symbols and integer counts divided by their gcd (as CDVAE).

    Raises:
        ValueError: fractional occupancies.
    """
    amounts = composition.get_el_amt_dict()
    symbols = tuple(amounts)
    counts = []
    for symbol in symbols:
        value = amounts[symbol]
        if abs(value - round(value)) > 1e-6:
            raise ValueError(f"fractional amount of {symbol} ({value}) in {composition.formula}")
        counts.append(int(round(value)))
    divisor = reduce(math.gcd, counts)
    return symbols, tuple(c // divisor for c in counts)


def composition_is_valid(composition: Composition, rules: ValidityRules = ValidityRules()) -> bool:
    """Compositional validity: some choice of oxidation states is charge
    neutral (SMACT) and, with ``rules.pauling_test``, passes the Pauling
    electronegativity test.

    Args:
        composition: The composition (integer amounts).
        rules: Which rules apply.

    Returns:
        True when compositionally valid.
    """
    try:
        symbols, counts = reduced_counts(composition)
    except ValueError:
        return False
    return _smact_valid(symbols, counts, rules.pauling_test, rules.single_element_valid, rules.alloys_valid, rules.max_oxidation_threshold)


@lru_cache(maxsize=65536)
def _smact_valid(
    symbols: tuple[str, ...], counts: tuple[int, ...], pauling: bool, single_ok: bool, alloys_ok: bool, threshold: int | None
) -> bool:
    import smact
    from smact.screening import pauling_test

    if len(set(symbols)) == 1:
        return single_ok
    if alloys_ok and all(s in smact.metals for s in symbols):
        return True
    try:
        elements = smact.element_dictionary(symbols)
    except (KeyError, NameError, TypeError):  # not an element SMACT knows (e.g. noble gases without data)
        return False
    electronegativities = [elements[s].pauling_eneg for s in symbols]
    oxidation_choices = [elements[s].oxidation_states or [] for s in symbols]
    limit = threshold if threshold is not None else max(counts)
    stoichs = [(c,) for c in counts]
    for states in itertools.product(*oxidation_choices):
        if not _neutral(smact.neutral_ratios(states, stoichs=stoichs, threshold=limit)):
            continue
        if not pauling:
            return True
        try:
            if pauling_test(states, electronegativities):
                return True
        except TypeError:  # an element without a Pauling electronegativity: CDVAE counts it as passing
            return True
    return False


def _neutral(result) -> bool:
    # smact < 3 returned (found, ratios); newer versions return the ratios.
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
        return result[0]
    return bool(result)
