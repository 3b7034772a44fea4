"""Peptide motifs: residues fixed at given positions and a length range.

A left-to-right decoder follows a :class:`MotifConstraint` (fixed positions
forced, the others any canonical residue, the end allowed only inside the
length range and after the last fixed position); masked diffusion infills a
canvas whose fixed positions are already written (:meth:`MotifConstraint.canvas`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from molgen.core.constraint import DecodingConstraint
from molgen.core.errors import MolgenError
from molgen.core.vocab import Vocabulary
from molgen.domains.protein import AMINO_ACIDS

_PART = re.compile(r"^\s*(\d+)\s*:\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class PeptideMotif:
    """Fixed residues (0-based position -> one-letter code) and a length range."""

    fixed: dict
    min_length: int
    max_length: int

    @classmethod
    def parse(cls, parts: list[str] | str, min_length: int, max_length: int) -> "PeptideMotif":
        """From ``POSITION:RESIDUES`` parts (1-based position, residues placed
        from there on, e.g. ``"3:KKL"``), comma separated or a list.

        Raises:
            MolgenError: a malformed part, an unknown residue, two residues at
                one position, a bad length range, or a motif longer than the
                maximum length.
        """
        if isinstance(parts, str):
            parts = [p for p in parts.split(",") if p.strip()]
        if not 1 <= min_length <= max_length:
            raise MolgenError(f"length range must satisfy 1 <= min <= max, got {min_length}-{max_length}")
        fixed: dict[int, str] = {}
        for part in parts:
            match = _PART.match(part)
            if match is None:
                raise MolgenError(f"motif part {part!r}: write POSITION:RESIDUES with a 1-based position, e.g. 3:KKL")
            start, residues = int(match.group(1)), match.group(2).upper()
            if start < 1:
                raise MolgenError(f"motif part {part!r}: positions start at 1")
            unknown = sorted(set(residues) - set(AMINO_ACIDS))
            if unknown:
                raise MolgenError(f"motif part {part!r}: unknown residue(s) {''.join(unknown)} (canonical one-letter codes: "
                                  f"{AMINO_ACIDS})")
            for offset, residue in enumerate(residues):
                position = start - 1 + offset
                if fixed.get(position, residue) != residue:
                    raise MolgenError(f"motif puts both {fixed[position]} and {residue} at position {position + 1}")
                fixed[position] = residue
        if not fixed:
            raise MolgenError("empty motif: give at least one POSITION:RESIDUES")
        if max(fixed) + 1 > max_length:
            raise MolgenError(f"the motif reaches position {max(fixed) + 1}, beyond the maximum length {max_length}")
        return cls(dict(sorted(fixed.items())), max(min_length, max(fixed) + 1), max_length)

    def satisfied_by(self, sequence: str | None) -> bool:
        """Whether ``sequence`` has every fixed residue and a length in range."""
        return (sequence is not None and self.min_length <= len(sequence) <= self.max_length
                and all(i < len(sequence) and sequence[i] == r for i, r in self.fixed.items()))

    def constraint(self, vocab: Vocabulary, seed: int = 0) -> "MotifConstraint":
        """The decoding constraint over ``vocab``.

        Raises:
            MolgenError: a fixed residue the vocabulary lacks.
        """
        return MotifConstraint(self, vocab, seed)


class MotifConstraint(DecodingConstraint):
    """Forces the motif's residues; the end comes inside the length range."""

    def __init__(self, motif: PeptideMotif, vocab: Vocabulary, seed: int = 0) -> None:
        missing = sorted({r for r in motif.fixed.values() if r not in vocab.stoi})
        if missing:
            raise MolgenError(f"residue(s) {''.join(missing)} not in the model's vocabulary")
        self.motif = motif
        self.vocab = vocab
        self.residues = np.zeros(len(vocab), dtype=bool)
        self.residues[[vocab.stoi[a] for a in AMINO_ACIDS if a in vocab.stoi]] = True
        self.fixed = {i: vocab.stoi[r] for i, r in motif.fixed.items()}
        self.rng = np.random.default_rng(seed)
        self._emitted = np.zeros(0, dtype=np.int64)
        self._limit = 0

    def reset(self, n: int, max_tokens: int) -> None:
        """Start ``n`` rows of at most ``max_tokens`` tokens, EOS included."""
        if self.motif.min_length + 1 > max_tokens:
            raise MolgenError(f"the motif needs {self.motif.min_length} residues; this model writes at most {max_tokens - 1}")
        self._emitted = np.zeros(n, dtype=np.int64)
        self._limit = min(max_tokens - 1, self.motif.max_length)

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        """Per row: the fixed residue, or any residue (and EOS once the length allows it)."""
        out = np.zeros((len(rows), len(self.vocab)), dtype=bool)
        for j, r in enumerate(rows):
            p = int(self._emitted[r])
            if p in self.fixed:
                out[j, self.fixed[p]] = True
                continue
            if p < self._limit:
                out[j] = self.residues
            if p >= self.motif.min_length:
                out[j, self.vocab.eos_id] = True
        return out

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Count each row's token."""
        self._emitted[rows] += 1

    def canvas(self, n: int, length_probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """For infilling: a length per row (from ``length_probs`` over
        lengths, restricted to the range, else uniform in it) and ``[n,
        max_length]`` fixed token ids (-1 where the model writes).

        Returns:
            ``(lengths, fixed)``.
        """
        lengths = np.arange(self.motif.min_length, self.motif.max_length + 1)
        probs = np.ones(len(lengths))
        if length_probs is not None:
            probs = np.array([length_probs[k] if k < len(length_probs) else 0.0 for k in lengths], dtype=float)
            if probs.sum() <= 0:
                probs = np.ones(len(lengths))
        chosen = self.rng.choice(lengths, size=n, p=probs / probs.sum())
        fixed = np.full((n, self.motif.max_length), -1, dtype=np.int64)
        for i, token in self.fixed.items():
            fixed[:, i] = token
        return chosen, fixed
