"""The tokens view of crystals: a compact text in the spirit of Gruver et
al. 2024 ("Fine-tuned language models generate stable inorganic materials").

Layout (one decimal for lengths, integer angles, fractional coordinates
wrapped into [0, 1) with ``coord_decimals`` decimals)::

    4.3 4.3 4.3
    90 90 90
    Cd 0.50 0.50 0.50
    N 0.50 0.00 0.50

Tokens: each digit, ``.``, ``-``, space and newline on its own, and every
element symbol as one token, so the vocabulary is the periodic table plus a
handful of characters whatever the training data.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from molgen.core.errors import ParseError
from molgen.core.grammar import TokenGrammar
from molgen.core.vocab import Vocabulary
from molgen.domains.base import Tokenizer

#: Every element symbol, H..Og.
ELEMENT_SYMBOLS: tuple[str, ...] = tuple(Element.from_Z(z).symbol for z in range(1, 119))
_DIGITS = tuple("0123456789")
_CHARACTERS = _DIGITS + (".", "-", " ", "\n")
_TOKEN_RE = re.compile(r"[A-Z][a-z]?|[0-9]|[.\- \n]")
_ELEMENT_SET = frozenset(ELEMENT_SYMBOLS)


class CrystalTextCodec:
    """Structure <-> compact text.

    Args:
        length_decimals: Decimals of the lattice lengths (A).
        angle_decimals: Decimals of the lattice angles (degrees).
        coord_decimals: Decimals of the fractional coordinates.
    """

    def __init__(self, length_decimals: int = 1, angle_decimals: int = 0, coord_decimals: int = 2):
        self.length_decimals = length_decimals
        self.angle_decimals = angle_decimals
        self.coord_decimals = coord_decimals

    def to_config(self) -> dict:
        """JSON description."""
        return {
            "length_decimals": self.length_decimals,
            "angle_decimals": self.angle_decimals,
            "coord_decimals": self.coord_decimals,
        }

    def encode(self, structure: Structure, order: Sequence[int] | None = None, shift: np.ndarray | None = None) -> str:
        """Structure -> text.

        Args:
            structure: An ordered structure.
            order: Site order (default: by atomic number, then coordinates).
            shift: Fractional translation added to every site (augmentation).

        Returns:
            The text.
        """
        lattice = structure.lattice
        frac = np.mod(structure.frac_coords + (0 if shift is None else shift), 1.0)
        # Round first and wrap again so that 0.996 prints as 0.00, not 1.00.
        frac = np.mod(np.round(frac, self.coord_decimals), 1.0)
        symbols = [site.specie.symbol for site in structure]
        if order is None:
            numbers = [Element(s).Z for s in symbols]
            order = sorted(range(len(structure)), key=lambda i: (numbers[i], *frac[i]))
        lines = [
            " ".join(f"{x:.{self.length_decimals}f}" for x in lattice.abc),
            " ".join(f"{x:.{self.angle_decimals}f}" for x in lattice.angles),
        ]
        c = self.coord_decimals
        lines += [f"{symbols[i]} {frac[i, 0]:.{c}f} {frac[i, 1]:.{c}f} {frac[i, 2]:.{c}f}" for i in order]
        return "\n".join(lines)

    def grammar(self, sites: Sequence[str] | None = None) -> TokenGrammar:
        """The layout :meth:`encode` writes, as a token automaton: three
        positive lengths (below 1000 A), three angles between 1 and 179
        degrees, then one or more site lines ``Element 0.xx 0.xx 0.xx`` with
        this codec's decimals (coordinates are wrapped into [0, 1), so their
        integer part is always ``0``). A text it accepts always parses unless
        its three angles cannot close a cell.

        Args:
            sites: Fix the site lines (crystal structure prediction): exactly
                these element symbols, one line each, in this order; lattice
                and coordinates stay free. None: any elements, any count.

        Returns:
            The grammar (a sequence may end after any complete site line, or
            only after the last of ``sites``), its states labelled ``length``,
            ``angle``, ``element``, ``coordinate`` and ``end`` (after a site
            line: another or stop).

        Raises:
            ValueError: ``sites`` empty or holding a symbol that is not an element.
        """
        g = TokenGrammar()

        def field(name: str, start: int, number, decimals: int) -> list[int]:
            first_new = g.n_states
            ends = number(g, start, decimals)
            g.label([start, *range(first_new, g.n_states)], name)
            return ends

        ends = [g.start]
        for name, number, decimals in (("length", _length, self.length_decimals), ("angle", _angle, self.angle_decimals)):
            for separator in "  \n":
                ends = _then(g, field(name, ends[0], number, decimals), separator)
        if sites is not None:
            unknown = [s for s in sites if s not in _ELEMENT_SET]
            if not sites or unknown:
                raise ValueError(f"site elements must be element symbols, got {list(sites)!r}")

        def site_line(start: int, elements) -> list[int]:
            g.label([start], "element")
            ends = _then(g, _then(g, [start], elements), " ")
            for separator in "  ":
                ends = _then(g, field("coordinate", ends[0], _coordinate, self.coord_decimals), separator)
            ends = field("coordinate", ends[0], _coordinate, self.coord_decimals)
            g.label(ends, "end")  # another site line or the end of the crystal
            return ends

        if sites is None:
            site_start = ends[0]
            for end in site_line(site_start, ELEMENT_SYMBOLS):
                g.add(end, "\n", site_start)
                g.accept(end)
            return g
        for position, symbol in enumerate(sites):
            if position:
                ends = _then(g, ends, "\n")
            ends = site_line(ends[0], (symbol,))
        for end in ends:
            g.accept(end)
        return g

    @staticmethod
    def decode(text: str) -> Structure | None:
        """Text -> structure, or None when the text is not a well-formed crystal
        (never raises).

        Args:
            text: Text in the layout above (any number of decimals).

        Returns:
            The structure or None.
        """
        try:
            return parse_crystal_text(text)
        except (ParseError, ValueError, TypeError, IndexError, OverflowError, ZeroDivisionError):
            return None


_NONZERO = tuple("123456789")

# Number pieces of the crystal text grammar. Each takes the state before the
# number and returns the states in which the number may end (several when the
# integer part has a variable number of digits and there are no decimals).


def _then(g: TokenGrammar, ends: list[int], tokens) -> list[int]:
    """One new state reached from every state of ``ends`` by any of ``tokens``."""
    nxt = g.new_state()
    for state in ends:
        g.add(state, tokens, nxt)
    return [nxt]


def _fraction_chain(g: TokenGrammar, integer_ends: list[int], decimals: int) -> list[list[int]]:
    """``.`` and exactly ``decimals`` digits after the integer part: the
    states after 0, 1, ..., ``decimals`` fraction digits (only the integer
    ends when ``decimals`` is 0)."""
    if decimals == 0:
        return [integer_ends]
    chain = [_then(g, integer_ends, ".")]
    for _ in range(decimals):
        chain.append(_then(g, chain[-1], _DIGITS))
    return chain


def _length(g: TokenGrammar, state: int, decimals: int) -> list[int]:
    """A length in (0, 1000) with no leading zero; ``0.`` is followed by a
    fraction that is not all zeros."""
    first = _then(g, [state], _NONZERO)
    second = _then(g, first, _DIGITS)
    third = _then(g, second, _DIGITS)
    chain = _fraction_chain(g, first + second + third, decimals)
    if decimals:
        zeros = _then(g, _then(g, [state], "0"), ".")  # only zeros after "0." so far
        for position in range(decimals):
            g.add(zeros[0], _NONZERO, chain[position + 1][0])
            if position < decimals - 1:
                zeros = _then(g, zeros, "0")
    return chain[-1]


def _angle(g: TokenGrammar, state: int, decimals: int) -> list[int]:
    """An angle from 1 to 179 degrees (integer part)."""
    one = _then(g, [state], "1")
    other = _then(g, [state], _NONZERO[1:])
    teen = _then(g, one, tuple("01234567"))  # 10-17, may take a third digit
    two_digits = [g.new_state()]  # 18-19 and 20-99
    g.add(one[0], ("8", "9"), two_digits[0])
    g.add(other[0], _DIGITS, two_digits[0])
    hundreds = _then(g, teen, _DIGITS)  # 100-179
    return _fraction_chain(g, one + other + teen + two_digits + hundreds, decimals)[-1]


def _coordinate(g: TokenGrammar, state: int, decimals: int) -> list[int]:
    """A wrapped fractional coordinate: ``0`` and the decimals."""
    return _fraction_chain(g, _then(g, [state], "0"), decimals)[-1]


def parse_crystal_text(text: str) -> Structure:
    """Strict parser of the compact text.

    Raises:
        ParseError: what is wrong with the text.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 3:
        raise ParseError("crystal text needs a lengths line, an angles line and at least one site")
    lengths = _floats(lines[0], 3, "lattice lengths")
    angles = _floats(lines[1], 3, "lattice angles")
    if min(lengths) <= 0 or not all(0 < a < 180 for a in angles):
        raise ParseError(f"impossible lattice parameters {lengths} {angles}")
    species, coords = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) != 4 or fields[0] not in _ELEMENT_SET:
            raise ParseError(f"site line {number} {line!r} is not 'Element x y z'")
        species.append(fields[0])
        coords.append(_floats(" ".join(fields[1:]), 3, f"coordinates on line {number}"))
    lattice = Lattice.from_parameters(*lengths, *angles)
    volume = lattice.volume
    if not np.isfinite(volume) or volume <= 0:
        raise ParseError(f"lattice parameters {lengths} {angles} give no cell (volume {volume})")
    return Structure(lattice, species, coords)


def _floats(line: str, n: int, what: str) -> list[float]:
    fields = line.split()
    if len(fields) != n:
        raise ParseError(f"{what}: expected {n} numbers, got {line!r}")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise ParseError(f"{what}: not numbers: {line!r}") from None
    if not all(np.isfinite(values)):
        raise ParseError(f"{what}: not finite: {line!r}")
    return values


def looks_like_crystal_text(text: str) -> bool:
    """Whether ``text`` starts like the compact layout (two lines of 3 numbers)."""
    lines = text.strip().splitlines()
    if len(lines) < 3:
        return False
    try:
        return all(len([float(x) for x in line.split()]) == 3 for line in lines[:2])
    except ValueError:
        return False


class CrystalTokenizer(Tokenizer):
    """Tokenizer of the compact crystal text. Its vocabulary is fixed: every
    element symbol plus digits and separators, so a model can emit any element
    even when the training set lacks it."""

    def __init__(self, vocab: Vocabulary | None = None):
        super().__init__(vocab or Vocabulary(list(ELEMENT_SYMBOLS) + list(_CHARACTERS)))

    def tokenize(self, text: str) -> list[str]:
        """Split crystal text into tokens.

        Raises:
            ParseError: a character that is not part of the layout.
        """
        tokens = _TOKEN_RE.findall(text)
        if sum(len(t) for t in tokens) != len(text):
            bad = next(ch for ch in _TOKEN_RE.sub("", text))
            raise ParseError(f"unexpected character {bad!r} in crystal text")
        return tokens

    def fit(self, texts: Sequence[str]) -> "CrystalTokenizer":
        """Check that ``texts`` tokenize; the vocabulary stays the fixed one."""
        for text in texts:
            self.tokenize(text)
        return self
