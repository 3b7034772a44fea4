"""Protein and peptide sequences over the 20 canonical amino acids.

Policy for other letters (``ProteinDomain(nonstandard=..., lowercase=...)``):

* lowercase letters are upper-cased (``lowercase="upper"``, default) or
  rejected (``"reject"``);
* ``U`` (selenocysteine), ``O`` (pyrrolysine), ``B`` (Asx) and ``Z`` (Glx)
  are rejected with the residue and position named (``nonstandard="reject"``,
  default) or mapped to their closest canonical residue (``"map"``: U->C,
  O->K, B->N, Z->Q);
* ``X`` (unknown), gaps, stops and anything else are always rejected.
"""

from __future__ import annotations

from typing import Any, Sequence

from molgen.core.errors import ParseError
from molgen.core.registry import DOMAINS
from molgen.core.vocab import Vocabulary
from molgen.domains.base import Domain, Tokenizer

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
NONSTANDARD_MAP = {"U": "C", "O": "K", "B": "N", "Z": "Q"}
_CANONICAL = frozenset(AMINO_ACIDS)


class ProteinTokenizer(Tokenizer):
    """One token per residue; the vocabulary is the 20 canonical amino acids."""

    def __init__(self, vocab: Vocabulary | None = None):
        super().__init__(vocab or Vocabulary(list(AMINO_ACIDS)))

    def tokenize(self, text: str) -> list[str]:
        """Residues of a canonical sequence.

        Raises:
            ParseError: a letter outside the 20 amino acids.
        """
        for i, ch in enumerate(text):
            if ch not in _CANONICAL:
                raise ParseError(f"residue {ch!r} at position {i + 1} is not one of the 20 canonical amino acids")
        return list(text)

    def fit(self, texts: Sequence[str]) -> "ProteinTokenizer":
        """Check that ``texts`` tokenize; the vocabulary stays fixed."""
        for text in texts:
            self.tokenize(text)
        return self


class ProteinDomain(Domain[str]):
    """Amino-acid sequences; the object is the canonical upper-case string.

    "Valid": only canonical residues and a length within
    ``[min_length, max_length]``; "same": identical sequence.

    Args:
        nonstandard: ``"reject"`` or ``"map"`` for U, O, B, Z.
        lowercase: ``"upper"`` or ``"reject"``.
        min_length: Shortest valid sequence.
        max_length: Longest valid sequence (None: no bound).
    """

    name = "protein"
    views = ("tokens",)
    export_format = "fasta"

    def __init__(self, nonstandard: str = "reject", lowercase: str = "upper", min_length: int = 1, max_length: int | None = None):
        if nonstandard not in ("reject", "map"):
            raise ValueError(f"nonstandard must be 'reject' or 'map', got {nonstandard!r}")
        if lowercase not in ("upper", "reject"):
            raise ValueError(f"lowercase must be 'upper' or 'reject', got {lowercase!r}")
        self.nonstandard = nonstandard
        self.lowercase = lowercase
        self.min_length = min_length
        self.max_length = max_length
        self.tokenizer = ProteinTokenizer()

    def parse(self, text: str) -> str:
        """Text -> canonical sequence.

        Raises:
            ParseError: empty sequence, lowercase (when rejected), or a
                residue outside the policy, named with its position.
        """
        seq = "".join(text.split())
        if seq.endswith("*"):  # a translated stop codon
            seq = seq[:-1]
        if not seq:
            raise ParseError("empty sequence")
        if seq != seq.upper():
            if self.lowercase == "reject":
                position = next(i for i, ch in enumerate(seq) if ch.islower()) + 1
                raise ParseError(f"lowercase residue {seq[position - 1]!r} at position {position} (lowercase='reject')")
            seq = seq.upper()
        if self.nonstandard == "map":
            seq = "".join(NONSTANDARD_MAP.get(ch, ch) for ch in seq)
        for i, ch in enumerate(seq):
            if ch not in _CANONICAL:
                hint = " (pass nonstandard='map' to map it)" if ch in NONSTANDARD_MAP else ""
                raise ParseError(f"residue {ch!r} at position {i + 1} is not one of the 20 canonical amino acids{hint}")
        return seq

    def format(self, obj: str) -> str:
        """The sequence itself."""
        return obj

    def model_text(self, obj: str, original: str, canonical: bool = True) -> str:
        """Always the cleaned sequence (upper case, mapped, no spaces): it loses nothing."""
        return obj

    def export(self, obj: str) -> str:
        """One FASTA record (header added by the writer)."""
        return obj

    def is_valid(self, obj: str | None) -> bool:
        """Canonical residues only and a length within the bounds."""
        if not obj or any(ch not in _CANONICAL for ch in obj):
            return False
        return len(obj) >= self.min_length and (self.max_length is None or len(obj) <= self.max_length)

    def key(self, obj: str) -> str:
        """The sequence."""
        return obj

    def to_config(self) -> dict[str, Any]:
        """JSON description."""
        return {
            "name": self.name, "nonstandard": self.nonstandard, "lowercase": self.lowercase,
            "min_length": self.min_length, "max_length": self.max_length,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ProteinDomain":
        """Rebuild from :meth:`to_config` output."""
        return cls(**{k: v for k, v in config.items() if k != "name" and k != "tokenizer"})


DOMAINS.register("protein", ProteinDomain)
