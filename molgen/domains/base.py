"""The domain interface: what every kind of object (SMILES, graph, protein,
crystal) offers to the rest of molgen."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Sequence, TypeVar

import numpy as np

from molgen.core.constraint import DecodingConstraint
from molgen.core.errors import ParseError, UnknownTokenError
from molgen.core.grammar import TokenGrammar
from molgen.core.vocab import Vocabulary

Obj = TypeVar("Obj")


class Tokenizer(ABC):
    """Text <-> ids for the tokens view.

    Subclasses implement :meth:`tokenize` and :meth:`detokenize`; the
    vocabulary is built from data with :meth:`fit` and saved with the model.
    """

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """Split text into tokens; raises :class:`ParseError` when impossible."""

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Join tokens back into text."""
        return "".join(tokens)

    def fit(self, texts: Sequence[str]) -> "Tokenizer":
        """Build the vocabulary from ``texts``; returns self."""
        self.vocab = Vocabulary.from_token_lists(self.tokenize(t) for t in texts)
        return self

    def _require_vocab(self) -> Vocabulary:
        if self.vocab is None:
            raise RuntimeError("tokenizer has no vocabulary yet: call fit() or load a saved model")
        return self.vocab

    def encode(self, text: str, on_unknown: str = "error") -> list[int]:
        """Text -> ids with BOS and EOS.

        Args:
            text: The object's text.
            on_unknown: ``"error"`` or ``"unk"`` (map unknown tokens to UNK).

        Raises:
            ParseError: text cannot be tokenized.
            UnknownTokenError: a token is not in the vocabulary.
        """
        vocab = self._require_vocab()
        return [vocab.bos_id, *vocab.encode(self.tokenize(text), on_unknown), vocab.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text; stops at EOS and skips BOS/PAD/MASK. UNK decodes to
        ``<unk>``, which no domain parses, so such samples count invalid."""
        vocab = self._require_vocab()
        out = []
        for idx in ids:
            idx = int(idx)
            if idx == vocab.eos_id:
                break
            if idx in (vocab.bos_id, vocab.pad_id, vocab.mask_id):
                continue
            out.append(vocab.itos[idx])
        return self.detokenize(out)

    def to_config(self) -> dict[str, Any]:
        """JSON description (vocabulary included)."""
        return {"vocab": self._require_vocab().to_list()}

    def load_config(self, config: dict[str, Any]) -> "Tokenizer":
        """Restore the vocabulary from :meth:`to_config` output; returns self."""
        self.vocab = Vocabulary.from_list(config["vocab"])
        return self


@dataclass(frozen=True)
class GraphSpec:
    """What a domain's graph view holds, so a graph backbone can size itself
    without knowing the domain.

    A graph of the view is a PyG ``Data`` with ``node_type [N]`` (indices into
    ``node_types``) and, depending on the spec,

    * ``edge_index [2, E]`` and ``edge_type [E]`` (indices into ``edge_types``,
      never 0; both directions listed) when ``edge_types`` is not empty;
    * ``frac_coords [N, 3]`` and ``lattice [1, 3, 3]`` (rows are the lattice
      vectors, A) when ``periodic``.

    Attributes:
        node_types: Names of the node categories ("C", "N+", "Fe").
        edge_types: Names of the edge categories; index 0 is "no edge". Empty
            when edges are not generated (crystals: they follow from geometry).
        periodic: Whether graphs carry fractional coordinates and a lattice.
    """

    node_types: tuple[str, ...]
    edge_types: tuple[str, ...] = ()
    periodic: bool = False


class Domain(ABC, Generic[Obj]):
    """One kind of object. Subclasses set ``name`` and ``views`` and implement
    parsing, formatting, validity and the canonical key.

    Attributes:
        name: Registry name ("smiles").
        views: Tensor views offered: ``"tokens"`` and/or ``"graph"``.
        tokenizer: The tokens-view tokenizer, or None.
    """

    name: ClassVar[str]
    views: ClassVar[tuple[str, ...]] = ()
    tokenizer: Tokenizer | None = None
    #: Name of the exchange format users expect files in ("cif"), when it
    #: differs from the domain's own text; see :meth:`export`.
    export_format: ClassVar[str | None] = None
    #: Whether one object's text spans several lines (crystals).
    multiline_text: ClassVar[bool] = False
    #: Capabilities that callers check instead of domain names.
    #: Objects are RDKit molecules that SD files can hold (molecules from
    #: SMILES, SELFIES or graphs).
    exports_sdf: ClassVar[bool] = False
    #: Objects have a Murcko scaffold (scaffold splits and diversity buckets).
    has_scaffold: ClassVar[bool] = False
    #: Domains whose registered data sets this domain reads (its own name
    #: included): a molecular graph reads SMILES data sets.
    reads_data_of: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def parse(self, text: str) -> Obj:
        """Text -> object; raises :class:`ParseError` with a clear message."""

    @abstractmethod
    def format(self, obj: Obj) -> str:
        """Object -> text."""

    @abstractmethod
    def is_valid(self, obj: Obj | None) -> bool:
        """Whether ``obj`` is a valid object of this domain."""

    @abstractmethod
    def key(self, obj: Obj) -> str:
        """Canonical key: two objects are "the same" iff their keys are equal."""

    def export(self, obj: Obj) -> str:
        """``obj`` in :attr:`export_format` (default: :meth:`format`)."""
        return self.format(obj)

    def same(self, a: Obj, b: Obj) -> bool:
        """Whether ``a`` and ``b`` are the same object (default: equal keys)."""
        return self.key(a) == self.key(b)

    def model_text(self, obj: Obj, original: str, canonical: bool = True) -> str:
        """The text a tokens-view model trains on for ``obj`` read from ``original``.

        Args:
            obj: The parsed object.
            original: The text it was read from.
            canonical: Prefer the canonical text (:meth:`format`).

        Returns:
            ``format(obj)`` when ``canonical``, else ``original``.
        """
        return self.format(obj) if canonical else original

    def try_parse(self, text: str) -> Obj | None:
        """Like :meth:`parse` but returns None on failure."""
        try:
            obj = self.parse(text)
        except (ParseError, UnknownTokenError):
            return None
        return obj if self.is_valid(obj) else None

    def canonical_text(self, text: str) -> str:
        """Parse and re-format canonically; raises :class:`ParseError`."""
        return self.key(self.parse(text))

    def augment(self, text: str, rng: np.random.Generator) -> str:
        """A randomized equivalent text (identity unless overridden)."""
        return text

    def token_grammar(self) -> TokenGrammar | None:
        """The token automaton of this domain's texts, for constrained
        decoding; None when the layout is not a regular language (SMILES ring
        and branch matching, for one)."""
        return None

    def decoding_constraint(self) -> DecodingConstraint | None:
        """A rule beyond the grammar that a left-to-right decoder can enforce
        as it goes (crystals: no atom within the validity distance of
        another); None when the domain has none."""
        return None

    def to_config(self) -> dict[str, Any]:
        """JSON description, enough for :meth:`from_config` to rebuild it."""
        cfg: dict[str, Any] = {"name": self.name}
        if self.tokenizer is not None and self.tokenizer.vocab is not None:
            cfg["tokenizer"] = self.tokenizer.to_config()
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Domain":
        """Rebuild from :meth:`to_config` output."""
        domain = cls()
        if "tokenizer" in config and domain.tokenizer is not None:
            domain.tokenizer.load_config(config["tokenizer"])
        return domain

    def reads(self, dataset_domain: str) -> bool:
        """Whether data sets registered for ``dataset_domain`` hold this domain's objects."""
        return dataset_domain == self.name or dataset_domain in self.reads_data_of

