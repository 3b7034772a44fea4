"""Decoding constraints beyond a grammar: a stateful per-sequence check that
a left-to-right decoder consults at every step.

A :class:`~molgen.core.grammar.TokenGrammar` keeps samples well formed; some
validity rules are not regular (crystals: no atom within 0.5 A of another,
which depends on the lattice and on every earlier site). A domain expresses
such a rule as a :class:`DecodingConstraint` over token ids; the decoder only
asks it which tokens each live sequence may take next and tells it what was
emitted, so neither side imports the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class DecodingConstraint(ABC):
    """Per-sequence token filter with state.

    A decoder calls :meth:`reset` once per batch, then at every step
    :meth:`allowed` for the live rows and :meth:`advance` with the tokens they
    emitted. Rows are indices into the batch passed to :meth:`reset`; they
    stay fixed when the decoder drops finished sequences.
    """

    @abstractmethod
    def reset(self, n: int, max_tokens: int) -> None:
        """Start ``n`` empty sequences that may hold at most ``max_tokens``
        tokens, EOS included (a constraint may steer a row to finish in time)."""

    @abstractmethod
    def allowed(self, rows: np.ndarray) -> np.ndarray | None:
        """Which tokens each of ``rows`` may emit next.

        Args:
            rows: Batch indices of the live sequences.

        Returns:
            ``[len(rows), V]`` booleans, or None when no row is restricted at
            this step (the common case, so the decoder skips the masking).
        """

    @abstractmethod
    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Record that ``rows`` emitted ``tokens`` (ids, one per row)."""

    def reset_exact(self, lengths: np.ndarray) -> None:
        """Start one row per entry of ``lengths`` that must hold exactly that
        many tokens, with no EOS to emit (a masked-diffusion canvas whose end
        is already placed).

        Raises:
            NotImplementedError: the constraint cannot steer to a fixed length.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot decode into a fixed-length canvas")
