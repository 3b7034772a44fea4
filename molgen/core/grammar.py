"""Token grammars: a deterministic finite automaton over token strings that a
left-to-right decoder can follow, so that every sample is well formed.

A domain whose text layout is a regular language (the compact crystal text)
describes it once as a :class:`TokenGrammar`; a backbone compiles it against
its vocabulary into a transition table and masks, at every step, the tokens
the automaton cannot take. The grammar knows token strings only, so neither
side imports the other.
"""

from __future__ import annotations

from typing import Iterable

import torch

from molgen.core.vocab import Vocabulary


class TokenGrammar:
    """A deterministic automaton over tokens.

    States are integers handed out by :meth:`new_state`; state 0 is the start.
    A sequence may end (EOS) only in an accepting state.
    """

    def __init__(self) -> None:
        self._edges: list[dict[str, int]] = [{}]
        self._accepting: set[int] = set()
        self._fields: dict[int, str] = {}

    @property
    def start(self) -> int:
        """The start state."""
        return 0

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self._edges)

    def new_state(self) -> int:
        """Add a state and return its number."""
        self._edges.append({})
        return len(self._edges) - 1

    def add(self, source: int, tokens: Iterable[str], target: int) -> None:
        """Allow every token of ``tokens`` from ``source``, leading to ``target``.

        Raises:
            ValueError: a token already leads elsewhere (not deterministic).
        """
        edges = self._edges[source]
        for token in tokens:
            if edges.get(token, target) != target:
                raise ValueError(f"token {token!r} from state {source} leads to two states")
            edges[token] = target

    def label(self, states: Iterable[int], field: str) -> None:
        """Name the field that ``states`` emit (e.g. ``"coordinate"``), so a
        sampler can treat fields differently (:meth:`field_values`)."""
        for state in states:
            self._fields[state] = field

    @property
    def fields(self) -> set[str]:
        """The field names in use."""
        return set(self._fields.values())

    def field_values(self, values: dict[str, float], default: float) -> torch.Tensor:
        """A per-state value: ``values[field]`` in labelled states, else ``default``.

        Raises:
            ValueError: a name in ``values`` that labels no state.
        """
        unknown = sorted(set(values) - self.fields)
        if unknown:
            raise ValueError(f"unknown grammar fields {unknown}; this grammar has {sorted(self.fields)}")
        return torch.tensor([values.get(self._fields.get(s, ""), default) for s in range(self.n_states)], dtype=torch.float)

    def accept(self, state: int) -> None:
        """Let sequences end in ``state``."""
        self._accepting.add(state)

    def accepts(self, tokens: Iterable[str]) -> bool:
        """Whether the whole token sequence is in the language."""
        state = self.start
        for token in tokens:
            state = self._edges[state].get(token, -1)
            if state < 0:
                return False
        return state in self._accepting

    def compile(self, vocab: Vocabulary) -> torch.Tensor:
        """Transition table for a vocabulary.

        Args:
            vocab: The model's vocabulary (grammar tokens it lacks are dropped);
                its EOS id is allowed in accepting states.

        Returns:
            ``[n_states, len(vocab)]`` long tensor: the next state, or -1 where
            the token is not allowed. Row 0 is the start state.

        Raises:
            ValueError: a state has no allowed token in this vocabulary (the
                decoder would have nothing to emit).
        """
        table = torch.full((self.n_states, len(vocab)), -1, dtype=torch.long)
        for state, edges in enumerate(self._edges):
            for token, target in edges.items():
                if token in vocab:
                    table[state, vocab.stoi[token]] = target
            if state in self._accepting:
                table[state, vocab.eos_id] = state
        dead = (table < 0).all(dim=1).nonzero().flatten().tolist()
        if dead:
            raise ValueError(f"grammar states {dead} allow no token of this vocabulary")
        return table
