"""Site exclusion while decoding crystal text: no atom is written within the
validity rule's minimum distance of an atom already in the cell.

The compact text puts fractional coordinates on a grid of ``10**decimals``
points per axis, after the lattice. Once the lattice is known, the points
within ``min_distance`` of a site (periodic images included) are a fixed set
of grid offsets, so the free points of the cell are the grid minus those
offsets around every site written so far. Each coordinate digit narrows the
new site to a box of the grid (a range of flat indices, see
:class:`OccupiedPoints`); a digit is allowed when its box still holds a free
point, so the decoder can never paint itself into a corner and the
finished site is always free. The check is exact for the decoded structure:
sites and grid points are the same numbers.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice

from molgen.core.constraint import DecodingConstraint
from molgen.core.errors import MolgenError
from molgen.core.vocab import Vocabulary

# Distances this close to the threshold count as too close: the validity
# check recomputes them from the same numbers in another order of operations.
_MARGIN = 1e-6
# Largest grid the exclusion handles (points per axis): with 3 decimals the
# points within 0.5 A of one site of a 4 A cell number ~10^7.
_MAX_GRID = 100
_MAX_OFFSETS = 4_000_000


class SiteExclusion(DecodingConstraint):
    """Keeps every new site at least ``min_distance`` from the earlier ones.

    Needs sequences in the codec's layout (decode with the grammar as well).
    Digits are restricted only where a site line's coordinate decimals are
    written. After a complete site, a new site line is refused when no free
    point is left in the cell or when the line and EOS would not fit in the
    token budget, so the text ends there instead of being cut off.

    Args:
        vocab: The model's vocabulary.
        coord_decimals: Decimals of the fractional coordinates (1 or 2).
        min_distance: Shortest allowed interatomic distance (A).

    Raises:
        MolgenError: more than 2 coordinate decimals.
    """

    def __init__(self, vocab: Vocabulary, coord_decimals: int = 2, min_distance: float = 0.5):
        grid = 10**coord_decimals
        if not 1 <= coord_decimals or grid > _MAX_GRID:
            raise MolgenError(f"site exclusion handles 1 or 2 coordinate decimals, not {coord_decimals}")
        self.decimals = coord_decimals
        self.grid = grid
        self.min_distance = float(min_distance)
        self.vocab_size = len(vocab)
        self._text = list(vocab.itos)
        self._digit_ids = np.array([vocab.stoi[d] for d in "0123456789"])
        self._newline_id = vocab.stoi["\n"]
        self._rows: list[_Row] = []

    def reset(self, n: int, max_tokens: int) -> None:
        self._rows = [_Row() for _ in range(n)]
        # "\n", element, space, three "0.dd" coordinates with two spaces, then EOS.
        self._last_site_start = max_tokens - (1 + 1 + 1 + 3 * (2 + self.decimals) + 2 + 1)

    def allowed(self, rows: np.ndarray) -> np.ndarray | None:
        mask = None
        for position, row_index in enumerate(rows.tolist()):
            row = self._rows[row_index]
            if row.in_decimals and row.occupied is not None:
                digits = row.occupied.allowed_digits(row.digits)
                if digits is None or digits.all():
                    continue
                mask = _ensure(mask, len(rows), self.vocab_size)
                mask[position, self._digit_ids[~digits]] = False
            elif row.site_complete and (row.count > self._last_site_start or (row.occupied is not None and not row.occupied.any_free())):
                mask = _ensure(mask, len(rows), self.vocab_size)
                mask[position, self._newline_id] = False
        return mask

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        for row_index, token_id in zip(rows.tolist(), tokens.tolist()):
            self._advance_row(self._rows[row_index], self._text[token_id])

    def _advance_row(self, row: "_Row", token: str) -> None:
        row.count += 1
        if row.line < 2:  # lattice lines
            row.header.append(" " if token == "\n" else token)
            if token != "\n":
                return
            row.line += 1
            if row.line == 2:
                row.offsets = self._ball_offsets("".join(row.header))
            return
        if token == "\n":
            row.line += 1
            row.digits, row.in_decimals, row.site_complete = [], False, False
        elif token == ".":
            row.in_decimals = True
        elif row.in_decimals and token.isdigit():
            row.digits.append(int(token))
            if len(row.digits) % self.decimals == 0:
                row.in_decimals = False
            if len(row.digits) == 3 * self.decimals:
                row.site_complete = True
                if row.offsets is not None:
                    if row.occupied is None:
                        row.occupied = OccupiedPoints(self.grid)
                    row.occupied.add(self._grid_index(row.digits), row.offsets)

    def _grid_index(self, digits: list[int]) -> tuple[int, int, int]:
        d = self.decimals
        return tuple(int("".join(map(str, digits[i * d : (i + 1) * d]))) for i in range(3))

    def _ball_offsets(self, header: str) -> np.ndarray | None:
        """Grid offsets within ``min_distance`` of a grid point (images
        included), or None when the lattice lines do not give a usable cell
        (the row is then left unconstrained)."""
        try:
            numbers = [float(x) for x in header.split()]
            lattice = Lattice.from_parameters(*numbers)
            matrix = lattice.matrix
            inverse = np.linalg.inv(matrix)
        except (ValueError, TypeError, np.linalg.LinAlgError):
            return None
        if not np.isfinite(inverse).all() or lattice.volume <= 0:
            return None
        # A ball of radius r spans r * |column i of M^-1| in fractional axis i.
        reach = np.ceil(self.grid * self.min_distance * np.linalg.norm(inverse, axis=0))
        # Thin cells need long offset ranges (a ball may span several periods of
        # one axis; duplicates modulo the grid are harmless); beyond this many
        # candidate offsets the row is left unconstrained rather than stall.
        if not np.prod(2 * reach + 1) <= _MAX_OFFSETS:
            return None
        reach = reach.astype(int)
        axes = [np.arange(-k, k + 1) for k in reach]
        offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        distances = np.linalg.norm((offsets / self.grid) @ matrix, axis=1)
        return offsets[distances < self.min_distance + _MARGIN]


class OccupiedPoints:
    """The grid points of a cell within the exclusion distance of some site,
    as sorted flat indices. A flat index, written with ``3 * decimals``
    digits, is the site's coordinate digits in text order, so the points
    under a digit prefix form one contiguous range: "is any point left free
    under this prefix" is two binary searches, with no dense grid kept.

    Args:
        grid: Points per axis (``10**decimals``).
    """

    def __init__(self, grid: int):
        self.grid = grid
        self._n_digits = 3 * int(round(np.log10(grid)))
        self._flat = np.empty(0, dtype=np.int64)

    def add(self, site: tuple[int, int, int], offsets: np.ndarray) -> None:
        """Occupy the points within the exclusion distance of ``site``."""
        g = self.grid
        points = np.mod(offsets + np.asarray(site), g)
        flat = (points[:, 0] * g + points[:, 1]) * g + points[:, 2]
        merged = np.sort(np.concatenate([self._flat, flat]))
        keep = np.empty(len(merged), dtype=bool)
        keep[:1] = True
        np.not_equal(merged[1:], merged[:-1], out=keep[1:])
        self._flat = merged[keep]

    def any_free(self) -> bool:
        """Whether any grid point is free."""
        return len(self._flat) < self.grid**3

    def allowed_digits(self, prefix: list[int]) -> np.ndarray | None:
        """Which next digits (0-9) keep a free point reachable after the
        coordinate digits ``prefix``; None when none does (do not restrict)."""
        span = 10 ** (self._n_digits - len(prefix) - 1)
        number = int("".join(map(str, prefix)) or "0")
        bounds = (number * 10 + np.arange(11, dtype=np.int64)) * span
        occupied = np.diff(np.searchsorted(self._flat, bounds))
        digits = occupied < span
        return digits if digits.any() else None


class _Row:
    """Decoding state of one sequence."""

    __slots__ = ("count", "line", "header", "offsets", "digits", "in_decimals", "site_complete", "occupied")

    def __init__(self) -> None:
        self.count = 0
        self.line = 0
        self.header: list[str] = []
        self.offsets: np.ndarray | None = None
        self.digits: list[int] = []
        self.in_decimals = False
        self.site_complete = False
        self.occupied: OccupiedPoints | None = None


def _ensure(mask: np.ndarray | None, rows: int, vocab_size: int) -> np.ndarray:
    return np.ones((rows, vocab_size), dtype=bool) if mask is None else mask
