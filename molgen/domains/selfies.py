"""SELFIES strings (Krenn et al. 2020): molecules written so that every
sequence of SELFIES symbols decodes to a molecule.

A model over SELFIES tokens cannot emit an unbalanced ring closure or branch,
the long-range pairing errors that sink non-autoregressive models on SMILES
(masked diffusion above all); what it can still get wrong is chemistry-level
plausibility, which the distribution metrics (FCD and the rest) measure.
Encoding and decoding are the ``selfies`` package's; objects are RDKit ``Mol``
as in :mod:`molgen.domains.smiles`, so scoring and metrics are shared.
"""

from __future__ import annotations

import re

import numpy as np
import selfies as sf
from rdkit import Chem

from molgen.core.errors import ParseError
from molgen.core.registry import DOMAINS
from molgen.domains.base import Domain, Tokenizer
from molgen.domains.smiles import SmilesDomain

# A SELFIES string is bracketed symbols and dots (molecule separators) only.
SELFIES_FORM = re.compile(r"^(?:\[[^\[\]]+\]|\.)+$")


class SelfiesTokenizer(Tokenizer):
    """One token per SELFIES symbol (``[C]``, ``[=Branch1]``, ``[Ring1]``, ``.``)."""

    def tokenize(self, text: str) -> list[str]:
        """Split a SELFIES string into symbols.

        Raises:
            ParseError: the text is not a sequence of bracketed symbols.
        """
        if not SELFIES_FORM.match(text):
            raise ParseError(f"not a SELFIES string: {text[:60]!r} (symbols are bracketed, like [C][=O])")
        return list(sf.split_selfies(text))


class SelfiesDomain(Domain[Chem.Mol]):
    """Molecules as SELFIES; objects are sanitized RDKit ``Mol``.

    "Valid" and "same" are those of the SMILES domain (RDKit sanitization,
    equal canonical SMILES). :meth:`parse` also takes SMILES (any text that is
    not all bracketed symbols), so the SMILES data sets and files read
    directly; a text of bracketed atoms only means the same molecule either
    way. Files are written as SMILES (:attr:`export_format`), the format
    every other tool reads.
    """

    name = "selfies"
    views = ("tokens",)
    exports_sdf = True
    has_scaffold = True
    export_format = "smiles"
    reads_data_of = ("selfies", "smiles")

    def __init__(self) -> None:
        self.tokenizer = SelfiesTokenizer()
        self._smiles = SmilesDomain()

    def parse(self, text: str) -> Chem.Mol:
        """SELFIES (or SMILES) -> sanitized ``Mol``.

        Raises:
            ParseError: empty text, an unknown SELFIES symbol, a SELFIES that
                decodes to nothing, or SMILES that RDKit rejects or that has
                no SELFIES form.
        """
        text = text.strip()
        if not text:
            raise ParseError("empty SELFIES")
        if SELFIES_FORM.match(text):
            try:
                smiles = sf.decoder(text)
            except sf.DecoderError as exc:
                raise ParseError(f"invalid SELFIES {text[:60]!r}: {str(exc).splitlines()[0]}") from None
            if not smiles:
                raise ParseError(f"SELFIES {text[:60]!r} decodes to no atoms")
            return self._smiles.parse(smiles)
        mol = self._smiles.parse(text)
        self._encode(Chem.MolToSmiles(mol))  # refuse, at reading time, what cannot be written back
        return mol

    @staticmethod
    def _encode(smiles: str) -> str:
        try:
            return sf.encoder(smiles)
        except sf.EncoderError as exc:
            raise ParseError(f"molecule {smiles!r} has no SELFIES form: {str(exc).splitlines()[0]}") from None

    def format(self, obj: Chem.Mol) -> str:
        """``Mol`` -> the SELFIES of its canonical SMILES."""
        return self._encode(Chem.MolToSmiles(obj))

    def export(self, obj: Chem.Mol) -> str:
        """``Mol`` -> canonical SMILES (what files hold)."""
        return Chem.MolToSmiles(obj)

    def is_valid(self, obj: Chem.Mol | None) -> bool:
        """True for a non-empty molecule that sanitizes."""
        return self._smiles.is_valid(obj)

    def key(self, obj: Chem.Mol) -> str:
        """RDKit canonical SMILES (isomeric), as in the SMILES domain."""
        return self._smiles.key(obj)

    def model_text(self, obj: Chem.Mol, original: str, canonical: bool = True) -> str:
        """The SELFIES a model trains on: of the canonical SMILES, or with
        ``canonical=False`` of the original atom order (a SMILES original is
        encoded, a SELFIES one kept)."""
        if canonical:
            return self.format(obj)
        return original.strip() if SELFIES_FORM.match(original.strip()) else self._encode(original.strip())

    def augment(self, text: str, rng: np.random.Generator) -> str:
        """The SELFIES of a randomized SMILES of the same molecule (seeded by ``rng``)."""
        smiles = self._smiles.augment(self.export(self.parse(text)), rng)
        return self._encode(smiles)


DOMAINS.register("selfies", SelfiesDomain)
