"""SMILES strings: RDKit-backed parsing, validity, canonical keys, an
atom-level regex tokenizer and randomized-SMILES augmentation."""

from __future__ import annotations

import re

import numpy as np
from rdkit import Chem, rdBase

from molgen.core.errors import ParseError
from molgen.core.registry import DOMAINS
from molgen.domains.base import Domain, Tokenizer
from molgen.domains.smiles_syntax import SmilesSyntax

# Atom-level SMILES tokens: bracket atoms, two-letter organic-subset halogens,
# one-letter organic atoms (aliphatic and aromatic), two-digit ring closures
# (%nn), one-digit ring closures, bonds, branches, dots and wildcards.
SMILES_TOKEN_PATTERN = re.compile(
    r"(\[[^\[\]]+\]|Br|Cl|%\d{2}|[BCNOSPFI]|[bcnosp]|\d|[=#$:/\\\-~+().*>@?])"
)


#: Documented size limits of a molecule: longer SMILES or more (heavy) atoms are parse errors, so one
#: hostile entry cannot cost gigabytes in RDKit, fingerprints or the D-MPNN.
MAX_SMILES_CHARS = 20_000
MAX_ATOMS = 2_000

class SmilesTokenizer(Tokenizer):
    """Regex atom-level tokenizer for SMILES."""

    def tokenize(self, text: str) -> list[str]:
        """Split a SMILES into tokens.

        Raises:
            ParseError: naming the first character no token pattern covers.
        """
        tokens = []
        pos = 0
        for match in SMILES_TOKEN_PATTERN.finditer(text):
            if match.start() != pos:
                break
            tokens.append(match.group())
            pos = match.end()
        if pos != len(text):
            raise ParseError(f"cannot tokenize SMILES {text!r}: unexpected {text[pos]!r} at position {pos}")
        return tokens


class SmilesDomain(Domain[Chem.Mol]):
    """Molecules as SMILES strings; objects are sanitized RDKit ``Mol``.

    "Valid" means RDKit parses and sanitizes it and it has at least one atom;
    "same" means equal RDKit canonical SMILES.
    """

    name = "smiles"
    views = ("tokens",)
    exports_sdf = True
    has_scaffold = True

    def __init__(self) -> None:
        self.tokenizer = SmilesTokenizer()

    def parse(self, text: str) -> Chem.Mol:
        """SMILES -> sanitized ``Mol``.

        Raises:
            ParseError: empty, unparsable or unsanitizable SMILES.
        """
        text = text.strip()
        if not text:
            raise ParseError("empty SMILES")
        if len(text) > MAX_SMILES_CHARS:  # RDKit and every featuriser after it scale badly with size
            raise ParseError(f"SMILES of {len(text):,} characters is longer than the limit of {MAX_SMILES_CHARS:,}")
        with rdBase.BlockLogs():  # RDKit would print its own errors to stderr
            mol = Chem.MolFromSmiles(text, sanitize=False)
            if mol is None:
                raise ParseError(f"unparsable SMILES {text!r}")
            try:
                Chem.SanitizeMol(mol)
            except Exception as exc:  # RDKit raises several sanitization classes
                raise ParseError(f"invalid SMILES {text!r}: {exc}") from None
        if mol.GetNumAtoms() == 0:
            raise ParseError(f"SMILES {text!r} has no atoms")
        if mol.GetNumAtoms() > MAX_ATOMS:
            raise ParseError(f"molecule of {mol.GetNumAtoms():,} atoms is larger than the limit of {MAX_ATOMS:,}")
        return mol

    def format(self, obj: Chem.Mol) -> str:
        """``Mol`` -> canonical SMILES."""
        return Chem.MolToSmiles(obj)

    def is_valid(self, obj: Chem.Mol | None) -> bool:
        """True for a non-empty molecule that sanitizes."""
        if obj is None or obj.GetNumAtoms() == 0:
            return False
        with rdBase.BlockLogs():
            try:
                Chem.SanitizeMol(Chem.Mol(obj))
            except Exception:
                return False
        return True

    def key(self, obj: Chem.Mol) -> str:
        """RDKit canonical SMILES (isomeric)."""
        return Chem.MolToSmiles(obj)

    def decoding_constraint(self) -> SmilesSyntax | None:
        """SMILES syntax and valence (:class:`~molgen.domains.smiles_syntax.SmilesSyntax`)
        over this domain's vocabulary; None before a vocabulary is fitted."""
        vocab = self.tokenizer.vocab if self.tokenizer is not None else None
        return None if vocab is None else SmilesSyntax(vocab)

    def augment(self, text: str, rng: np.random.Generator) -> str:
        """A randomized (non-canonical) SMILES of the same molecule.

        The atom order is permuted with ``rng``, so augmentation is seedable
        (RDKit's own ``doRandom`` uses a global generator).
        """
        mol = self.parse(text)
        order = rng.permutation(mol.GetNumAtoms()).tolist()
        return Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)


DOMAINS.register("smiles", SmilesDomain)
