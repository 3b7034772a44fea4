"""Compositions as a constraint on generation (crystal structure prediction):
a formula such as ``SrTiO3`` read into the site list of one cell.

The site list is in atomic-number order, the order in which the compact text
writes its site lines (:meth:`CrystalTextCodec.encode`), so a text decoder
can be made to write exactly these elements and a graph decoder can take them
as fixed node types.
"""

from __future__ import annotations

from pymatgen.core import Composition, Element

from molgen.core.errors import MolgenError
from molgen.domains.crystal.text import ELEMENT_SYMBOLS

_ELEMENTS = frozenset(ELEMENT_SYMBOLS)


def composition_sites(formula: str, formula_units: int = 1, max_sites: int = 1_000) -> list[str]:
    """The element of every site of a cell of ``formula``.

    Args:
        formula: A formula pymatgen reads (``SrTiO3``, ``Sr(TiO3)2``, ``Cs2AgBiBr6``).
            Amounts are per cell as written, times ``formula_units``.
        formula_units: Copies of the formula in the cell.
        max_sites: Largest cell accepted.

    Returns:
        Element symbols, one per site, in atomic-number order.

    Raises:
        MolgenError: unparsable formula, unknown element, fractional
            amounts (a disordered site), fewer than 1 or more than
            ``max_sites`` sites.
    """
    text = (formula or "").strip()
    if not text:
        raise MolgenError("empty composition: give a formula such as SrTiO3")
    if formula_units < 1:
        raise MolgenError(f"formula units must be >= 1, got {formula_units}")
    try:
        amounts = Composition(text).get_el_amt_dict()
    except (ValueError, KeyError, TypeError) as exc:
        raise MolgenError(f"cannot read composition {text!r}: {exc}") from None
    unknown = sorted(symbol for symbol in amounts if symbol not in _ELEMENTS)
    if unknown:
        raise MolgenError(f"composition {text!r}: unknown element(s) {', '.join(unknown)}")
    counts = {}
    for symbol, amount in amounts.items():
        total = amount * formula_units
        if abs(total - round(total)) > 1e-6 or round(total) < 1:
            raise MolgenError(f"composition {text!r}: {symbol} amount {amount:g} x {formula_units} formula unit(s) is not a "
                              "whole number of sites (disordered sites are not generated; scale the formula)")
        counts[symbol] = int(round(total))
    n_sites = sum(counts.values())
    if n_sites > max_sites:
        raise MolgenError(f"composition {text!r} x {formula_units} has {n_sites} sites, more than the limit of {max_sites}")
    return [symbol for symbol in sorted(counts, key=lambda s: Element(s).Z) for _ in range(counts[symbol])]
