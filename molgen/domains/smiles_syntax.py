"""SMILES syntax and valence as a decoding constraint.

A left-to-right decoder that consults :class:`SmilesSyntax` only emits token
sequences that parse as SMILES: branches open after an atom and close before
the end, ring-closure digits pair up between two different, not yet bonded
atoms, a bond is followed by an atom or a ring closure, and no atom takes more
bonds than its valence allows. The checks are local, so kekulization of
aromatic rings (and a few charge/valence corner cases) can still fail in
RDKit; what it removes is the bulk of a weak model's errors (unclosed rings
and branches, over-bonded atoms).

It also steers each sequence to finish in time: a token is allowed only if
the open branches and rings it leaves can still be closed within the tokens
left, so a fixed-length canvas (masked diffusion) or a length limit
(autoregressive) ends with a complete SMILES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem

from molgen.core.constraint import DecodingConstraint
from molgen.core.vocab import Vocabulary

# Token kinds.
OTHER, ATOM, BOND, RING, OPEN, CLOSE, DOT, EOS = range(8)
# What the previous token was, for a row's state (START before any token).
START = -1

_BOND_ORDERS = {"-": 1, "=": 2, "#": 3, ":": 1, "/": 1, "\\": 1}
_ORGANIC_CAPACITY = {"B": 3, "C": 4, "N": 3, "O": 2, "P": 5, "S": 6, "F": 1, "Cl": 1, "Br": 1, "I": 1,
                     "b": 3, "c": 4, "n": 3, "o": 2, "p": 3, "s": 2}
# An aromatic atom sits in a ring: two ring neighbours plus at most one substituent.
_AROMATIC_MAX_NEIGHBOURS = 3
_BRACKET = re.compile(r"^\[(\d+)?([A-Z][a-z]?|[a-z][a-z]?|\*)(@{1,2}[A-Z]*\d*)?(H\d*)?([+-]+\d*)?(:\d+)?\]$")
_PERIODIC = Chem.GetPeriodicTable()


def _max_valence(z: int) -> int | None:
    """RDKit's largest allowed valence of element ``z``; None when RDKit sets
    no limit (transition metals) or ``z`` is not an element."""
    if not 0 < z < 119:
        return None
    valences = list(_PERIODIC.GetValenceList(z))
    if -1 in valences:
        return None
    return max(valences)


def _bracket_capacity(token: str) -> tuple[int, bool] | None:
    """(bond capacity, aromatic) of a bracket atom token, None if unparsable.

    A charged atom takes the valences of its isoelectronic neighbour (N+ like C,
    O- like F, B- like C); elements RDKit does not limit get a capacity of 8.
    """
    match = _BRACKET.match(token)
    if match is None:
        return None
    _, symbol, _, hydrogens, charge_text, _ = match.groups()
    if symbol == "*":
        return 8, False
    aromatic = symbol[0].islower()
    try:
        z = _PERIODIC.GetAtomicNumber(symbol.capitalize())
    except RuntimeError:
        return None
    h = 0 if not hydrogens else (int(hydrogens[1:]) if len(hydrogens) > 1 else 1)
    charge = 0
    if charge_text:
        sign = 1 if charge_text[0] == "+" else -1
        digits = charge_text.lstrip("+-")
        charge = sign * (int(digits) if digits else len(charge_text))
    if _max_valence(z) is None:
        return 8, aromatic
    valence = _max_valence(z - charge)
    if valence is None:
        valence = 8
    return max(valence - h, 0), aromatic


@dataclass
class _Row:
    """Parser state of one sequence."""

    prev: int = START
    current: int = -1  # atom new bonds attach to
    bond: int = 0  # order of a pending bond token (0: none)
    branches: list = field(default_factory=list)  # atoms to return to at ')'
    rings: dict = field(default_factory=dict)  # label -> (atom, explicit order or 0)
    free: list = field(default_factory=list)  # remaining bond capacity per atom
    neighbours: list = field(default_factory=list)  # set of bonded atoms per atom
    aromatic: list = field(default_factory=list)
    placed_in: list = field(default_factory=list)  # ring labels open when each atom was placed
    ringed: list = field(default_factory=list)  # atoms that opened or closed a ring
    bond_after_atom: bool = False  # a pending bond may lead into a ring closure
    emitted: int = 0
    limit: int = 0


class SmilesSyntax(DecodingConstraint):
    """Per-row SMILES parser that masks tokens which would break the syntax
    or an atom's valence.

    Args:
        vocab: The model's vocabulary (special tokens are recognised by the
            ids it names; other non-SMILES tokens are never allowed).
        exact_length: Rows must end exactly at their limit and EOS is never
            proposed (a masked-diffusion canvas whose end is already placed);
            otherwise EOS is allowed whenever the SMILES is complete.
    """

    def __init__(self, vocab: Vocabulary, exact_length: bool = False) -> None:
        self.exact_length = self._exact_default = exact_length
        size = len(vocab)
        self.kind = np.full(size, OTHER, dtype=np.int8)
        self.capacity = np.zeros(size, dtype=np.int16)
        self.is_aromatic = np.zeros(size, dtype=bool)
        self.order = np.zeros(size, dtype=np.int8)
        self.label = np.full(size, -1, dtype=np.int16)
        for token, i in vocab.stoi.items():
            self._classify(token, i)
        self.kind[vocab.eos_id] = EOS
        self._rows: list[_Row] = []
        self.dead_ends = 0  # rows left unconstrained for a step (see allowed)
        self._atoms = np.flatnonzero(self.kind == ATOM)
        self._bonds = np.flatnonzero(self.kind == BOND)
        self._digits = np.flatnonzero(self.kind == RING)
        self._digit_of = {int(self.label[i]): int(i) for i in self._digits}

    def _classify(self, token: str, i: int) -> None:
        if token in _ORGANIC_CAPACITY:
            self.kind[i], self.capacity[i] = ATOM, _ORGANIC_CAPACITY[token]
            self.is_aromatic[i] = token[0].islower()
        elif token.startswith("[") and token.endswith("]"):
            parsed = _bracket_capacity(token)
            if parsed is not None:
                self.kind[i], self.capacity[i] = ATOM, parsed[0]
                self.is_aromatic[i] = parsed[1]
        elif token in _BOND_ORDERS:
            self.kind[i], self.order[i] = BOND, _BOND_ORDERS[token]
        elif re.fullmatch(r"\d|%\d{2}", token):
            self.kind[i], self.label[i] = RING, int(token.lstrip("%"))
        elif token == "(":
            self.kind[i] = OPEN
        elif token == ")":
            self.kind[i] = CLOSE
        elif token == ".":
            self.kind[i] = DOT

    # -- DecodingConstraint -------------------------------------------------
    def reset(self, n: int, max_tokens: int) -> None:
        """Start ``n`` rows that may hold ``max_tokens`` tokens (EOS included
        unless the constraint was built with ``exact_length``)."""
        self.exact_length = self._exact_default
        self.reset_lengths(np.full(n, max_tokens))

    def reset_lengths(self, limits) -> None:
        """Start one row per entry of ``limits`` (tokens each row may hold;
        with ``exact_length``, the tokens it must hold)."""
        self._rows = [_Row(limit=int(limit)) for limit in limits]
        self.dead_ends = 0

    def reset_exact(self, lengths) -> None:
        """Start rows that must end exactly at ``lengths`` tokens (no EOS)."""
        self.exact_length = True
        self.reset_lengths(lengths)

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        """``[len(rows), V]`` allowed tokens; a row with none left (a dead
        end the local rules did not foresee) may take anything, so decoding
        goes on and the sample is simply invalid."""
        out = np.zeros((len(rows), len(self.kind)), dtype=bool)
        for j, r in enumerate(rows):
            mask = self._allowed_row(self._rows[r])
            if mask.any():
                out[j] = mask
            elif self._complete(self._rows[r]):
                out[j, self.kind == EOS] = True  # nothing extends it: end early
            else:
                out[j] = True
                self.dead_ends += 1
        return out

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Record each row's emitted token."""
        for r, token in zip(rows, tokens):
            self._advance_row(self._rows[r], int(token))

    # -- rules ----------------------------------------------------------------
    def _closing_cost(self, depth: int, n_rings: int, prev: int, atoms: int = 0, exact: bool | None = None) -> int:
        """Fewest tokens that complete a state (EOS included when the row
        ends with one): one per open branch and ring, an atom after a bond or
        an open branch, and ``atoms`` more atoms a ring needs before it can
        close (two when it opened at the current atom: a ring has three atoms
        at least)."""
        cost = depth + n_rings + atoms
        if prev in (START, BOND, OPEN, DOT) and not atoms:
            cost += 1
        exact = self.exact_length if exact is None else exact
        return cost + (0 if exact else 1)

    def allowed_in_span(self, r: int, base_depth: int, frozen: frozenset, left: int, exact: bool,
                        must_continue: bool = False) -> np.ndarray:
        """Allowed tokens of row ``r`` inside a span of a template: branches
        opened before the span (``base_depth``) and rings open at its start
        (``frozen`` labels) belong to the template and are left alone, and
        what the span opens must close within ``left`` more tokens (exactly
        then when ``exact``; otherwise one more token, the span's end, follows).
        The span's end token (')' at ``base_depth``, EOS) is the caller's to allow.
        With ``must_continue`` the template goes on from the span's last atom
        (a linker), so atoms on the span's own chain keep a free bond."""
        return self._allowed_row(self._rows[r], base_depth, frozen, left, exact, must_continue)

    def span_complete(self, r: int, base_depth: int, frozen: frozenset) -> bool:
        """Whether row ``r`` could end its span here (see :meth:`allowed_in_span`)."""
        row = self._rows[r]
        return (row.prev in (ATOM, RING, CLOSE) and len(row.branches) == base_depth
                and all(label in frozen for label in row.rings) and not self._must_open_ring(row, frozen))

    @staticmethod
    def _must_open_ring(row: _Row, frozen: frozenset) -> bool:
        """An aromatic atom just written outside any ring must open one: it lies on a ring path."""
        cur = row.current
        return (row.prev == ATOM and cur >= 0 and row.aromatic[cur] and not row.ringed[cur]
                and not (row.placed_in[cur] - frozen))

    def _allowed_row(self, row: _Row, base_depth: int = 0, frozen: frozenset = frozenset(), left: int | None = None,
                     exact: bool | None = None, must_continue: bool = False) -> np.ndarray:
        mask = np.zeros(len(self.kind), dtype=bool)
        if left is None:
            left = row.limit - row.emitted - 1  # tokens left after this one
        in_span = bool(base_depth or frozen)
        depth = len(row.branches) - base_depth
        n_rings, prev = sum(1 for label in row.rings if label not in frozen), row.prev
        cur = row.current
        free = row.free[cur] if cur >= 0 else 0
        after_atom = prev in (ATOM, RING, CLOSE)

        def cost(d, n, p, atoms=0):
            return self._closing_cost(d, n, p, atoms, exact)

        # Atoms: a new fragment after START/'.', else bonded to the current atom.
        # A ring opened at the current atom cannot close on its new neighbour.
        if cost(depth, n_rings, ATOM, 1 if self._rings_at(row, cur, frozen) else 0) <= left:
            if prev in (START, DOT):
                mask[self._atoms] = True
            elif cur >= 0 and free >= (row.bond or 1) and self._can_bond(row, cur):
                # A new atom left with no free valence is a dead end while rings
                # wait to close outside any branch.
                need = (row.bond or 1) + (1 if (n_rings or must_continue) and not depth else 0)
                mask[self._atoms[self.capacity[self._atoms] >= need]] = True
            if not n_rings and cost(depth, 1, RING, 2) > left - 1:
                mask[self._atoms[self.is_aromatic[self._atoms]]] = False  # no room for the ring it must open
        if (after_atom or prev == OPEN) and cur >= 0:
            # A bond leads into an atom, or straight into a ring closure ("C=1").
            into_ring = prev in (ATOM, RING) and any(
                a != cur and a not in row.neighbours[cur] for label, (a, _) in row.rings.items() if label not in frozen)
            bond_cost = cost(depth, n_rings, BOND) - (1 if into_ring else 0)
            if bond_cost <= left:
                # A bond opening a branch of an atom that must go on (rings
                # wait, outside any branch) leaves it one bond.
                spare = 1 if prev == OPEN and n_rings and depth == 1 else 0
                mask[self._bonds[self.order[self._bonds] <= free - spare]] = True
        if after_atom and cur >= 0:
            # A branch needs an atom inside and a ')' after, and the atom must
            # keep valence to go on after it while rings wait.
            branch_need = 2 if n_rings and not depth else 1
            if free >= branch_need and cost(depth + 1, n_rings, OPEN) <= left:
                mask[self.kind == OPEN] = True
            # Closing onto an atom with no valence left strands the open rings.
            stranded = depth == 1 and n_rings and row.free[row.branches[-1]] < 1
            if depth > 0 and not stranded and cost(depth - 1, n_rings, CLOSE,
                                                   self._atoms_before_closing(row, row.branches[-1], frozen=frozen)) <= left:
                mask[self.kind == CLOSE] = True
            if not in_span and depth == 0 and not n_rings and cost(0, 0, DOT) <= left:
                mask[self.kind == DOT] = True
            if not in_span and not self.exact_length and depth == 0 and not n_rings:
                mask[self.kind == EOS] = True
        # Ring digits follow an atom, another ring digit, or a bond that did.
        if cur >= 0 and (prev in (ATOM, RING) or (prev == BOND and row.bond_after_atom)):
            self._ring_digits(row, mask, depth, n_rings, left, frozen, exact, must_continue)
        if self._must_open_ring(row, frozen):
            mask &= (self.kind == RING) & ~np.isin(self.label, list(row.rings))
        return mask

    def _can_bond_closing(self, row: _Row, atom: int) -> bool:
        """Room for the bond a ring closure adds (its own reservation sits on the opener)."""
        return not row.aromatic[atom] or len(row.neighbours[atom]) + sum(
            1 for a, _ in row.rings.values() if a == atom) < _AROMATIC_MAX_NEIGHBOURS

    @staticmethod
    def _complete(row: _Row) -> bool:
        return row.prev in (ATOM, RING, CLOSE) and not row.branches and not row.rings

    @staticmethod
    def _atoms_before_closing(row: _Row, atom: int, skip: int | None = None, new_neighbour: int | None = None,
                              frozen: frozenset = frozenset()) -> int:
        """Atoms the chain needs beyond ``atom`` before every open ring (but
        ``skip``) can close: two if one opened at ``atom``, one if one opened
        at a neighbour (closing there would double a bond), else none."""
        neighbours = row.neighbours[atom] | ({new_neighbour} if new_neighbour is not None else set())
        need = 0
        for label, (opener, _) in row.rings.items():
            if label == skip or label in frozen:
                continue
            if opener == atom:
                return 2
            if opener in neighbours:
                need = 1
        return need

    @staticmethod
    def _rings_at(row: _Row, atom: int, frozen: frozenset = frozenset()) -> bool:
        return any(a == atom for label, (a, _) in row.rings.items() if label not in frozen)

    def _can_bond(self, row: _Row, atom: int) -> bool:
        if not row.aromatic[atom]:
            return True
        reserved = sum(1 for a, _ in row.rings.values() if a == atom)
        return len(row.neighbours[atom]) + reserved < _AROMATIC_MAX_NEIGHBOURS

    def _ring_digits(self, row: _Row, mask: np.ndarray, depth: int, n_rings: int, left: int,
                     frozen: frozenset = frozenset(), exact: bool | None = None, must_continue: bool = False) -> None:
        cur = row.current
        free = row.free[cur]
        # Opening: any label not open now (the template's open labels are open, so excluded too).
        if (free >= (row.bond or 1) + (0 if depth else 1) and self._can_bond(row, cur)
                and self._closing_cost(depth, n_rings + 1, RING, 2, exact) <= left):
            closed = [self._digit_of[label] for label in row.rings if label in self._digit_of]
            mask[self._digits] = True
            mask[closed] = False
        # Closing: one of the open rings (not the template's), on another atom not yet bonded to this one.
        if not row.rings or not self._can_bond_closing(row, cur):
            return
        for label, (atom, opened) in row.rings.items():
            if label in frozen or label not in self._digit_of:
                continue
            if atom == cur or atom in row.neighbours[cur]:
                continue
            if opened and row.bond and opened != row.bond:
                continue
            order_here = row.bond or opened or 1
            if free < order_here or row.free[atom] < order_here - (opened or 1):
                continue
            if free == order_here and (n_rings > 1 or must_continue) and not depth:
                continue  # no valence left to go on (other open rings, or the template after a linker)
            atoms = self._atoms_before_closing(row, cur, skip=label, new_neighbour=atom, frozen=frozen)
            if self._closing_cost(depth, n_rings - 1, RING, atoms, exact) <= left:
                mask[self._digit_of[label]] = True

    def _advance_row(self, row: _Row, token: int) -> None:
        kind = int(self.kind[token])
        row.emitted += 1
        if kind == ATOM:
            atom = len(row.free)
            row.free.append(int(self.capacity[token]))
            row.neighbours.append(set())
            row.aromatic.append(bool(self.is_aromatic[token]))
            row.placed_in.append(frozenset(row.rings))
            row.ringed.append(False)
            if row.prev not in (START, DOT) and row.current >= 0:
                self._bond(row, row.current, atom, row.bond or 1)
            row.current, row.bond = atom, 0
        elif kind == BOND:
            row.bond = int(self.order[token])
            row.bond_after_atom = row.prev in (ATOM, RING)
        elif kind == RING:
            label = int(self.label[token])
            row.ringed[row.current] = True
            if label in row.rings:
                atom, opened = row.rings.pop(label)
                order = row.bond or opened or 1
                row.free[atom] += opened or 1  # the reservation becomes the bond
                self._bond(row, row.current, atom, order)
            else:
                order = row.bond or 1
                row.rings[label] = (row.current, row.bond)
                row.free[row.current] -= order
            row.bond = 0
        elif kind == OPEN:
            row.branches.append(row.current)
        elif kind == CLOSE:
            if row.branches:
                row.current = row.branches.pop()
        elif kind == DOT:
            row.current = -1
        row.prev = kind if kind != OTHER else row.prev

    @staticmethod
    def _bond(row: _Row, a: int, b: int, order: int) -> None:
        row.free[a] -= order
        row.free[b] -= order
        row.neighbours[a].add(b)
        row.neighbours[b].add(a)
