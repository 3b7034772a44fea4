"""SMILES templates: a scaffold or fragments written out in full, with spans
a left-to-right decoder fills (scaffold decoration, fragment growing,
linking, analogs by replacing one side of a bond).

A template is SMILES text cut at its attachment points (``*``). A dummy atom
has one neighbour, so in SMILES written from a real atom it always ends a
chain: either a branch, ``C(*)``, or the main chain, ``c1ccccc1*``. Each
becomes a span the model writes from the attachment atom onward, ended by
the model itself: its ``)`` closing the branch or its EOS ending the string.
Everything else is forced token by token. A linker is a span of a drawn
length followed by the second fragment, written from its attachment atom.
While a span is written, :class:`~molgen.domains.smiles_syntax.SmilesSyntax`
keeps it well formed and leaves the template's open rings and branches to
the template, so the scaffold comes out exactly as given, substituted only at
its attachment points (checked by :meth:`SmilesTemplate.satisfied_by`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rdkit import Chem, rdBase

from molgen.core.constraint import DecodingConstraint
from molgen.core.errors import MolgenError
from molgen.core.vocab import Vocabulary
from molgen.domains.smiles import SmilesTokenizer
from molgen.domains.smiles_syntax import ATOM, BOND, EOS, SmilesSyntax

_TOKENIZER = SmilesTokenizer()
_DUMMY = re.compile(r"^\[\d*\*(:\d+)?\]$|^\*$")
_RING_LABEL = re.compile(r"^(\d|%\d{2})$")

#: Span kinds: ended by the model's ')' closing the branch, by its EOS, or after a drawn number of tokens.
CLOSE, END, LENGTH = "close", "eos", "length"


@dataclass(frozen=True)
class Span:
    """A stretch the model writes.

    Attributes:
        end: ``"close"``, ``"eos"`` or ``"length"`` (see the module docstring).
        lengths: With ``"length"``: the (min, max) tokens drawn per sample.
    """

    end: str
    lengths: tuple[int, int] = (1, 1)
    first_bond: int = 1  # order of the span's bond to its attachment atom (the template's bond to its '*')


@dataclass
class SmilesTemplate:
    """Forced token segments and spans, plus the query that checks a result.

    Attributes:
        segments: Alternating ``list[str]`` (forced tokens) and :class:`Span`.
        query: RDKit query of what every result must contain (dummy atoms match
            any atom; the other atoms keep exactly their degree).
        text: The template as SMILES with ``*`` at the spans, for messages.
    """

    segments: list
    query: Chem.Mol
    text: str
    kind: str = "scaffold"
    extra: dict = field(default_factory=dict)

    def satisfied_by(self, mol: Chem.Mol | None) -> bool:
        """Whether ``mol`` contains the scaffold/fragments, substituted only at the attachment points."""
        return mol is not None and mol.HasSubstructMatch(self.query)

    def constraint(self, vocab: Vocabulary, seed: int = 0, max_span: int = 40) -> "TemplateConstraint":
        """The decoding constraint that writes this template with ``vocab``.

        Raises:
            MolgenError: a template token the model's vocabulary lacks.
        """
        return TemplateConstraint(self, vocab, seed=seed, max_span=max_span)


def _parse(smiles: str, what: str) -> Chem.Mol:
    if not isinstance(smiles, str) or not smiles.strip():
        raise MolgenError(f"{what}: empty SMILES")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise MolgenError(f"{what} {smiles!r} is not a valid SMILES")
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetAtomMapNum(0)
            atom.SetIsotope(0)
            if atom.GetDegree() != 1:
                raise MolgenError(f"{what} {smiles!r}: an attachment point '*' must have exactly one neighbour")
    return mol


def _dummies(mol: Chem.Mol) -> list[int]:
    return [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]


def _query(mol: Chem.Mol) -> Chem.Mol:
    params = Chem.AdjustQueryParameters()
    params.makeDummiesQueries = True
    params.adjustDegree = True
    params.adjustDegreeFlags = Chem.ADJUST_IGNOREDUMMIES
    return Chem.AdjustQueryProperties(mol, params)


def _without_dummies(query: Chem.Mol) -> Chem.Mol:
    """The query less its dummy atoms; the attachment atoms keep the degree that counted them."""
    editable = Chem.RWMol(query)
    for idx in sorted(_dummies(query), reverse=True):
        editable.RemoveAtom(idx)
    return editable.GetMol()


def _tokens_from(mol: Chem.Mol) -> tuple[list[str], list[int]]:
    """Tokens of ``mol`` written from its first real atom (so no dummy comes
    first), and for each dummy in written order the order of its bond (what
    the span's first bond may use of the attachment atom's valence: later
    forced tokens hold the rest)."""
    root = next(a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() != 0)
    text = Chem.MolToSmiles(mol, rootedAtAtom=root)
    order = [int(i) for i in mol.GetProp("_smilesAtomOutputOrder").strip("[],").split(",") if i]
    first_bonds = [int(mol.GetAtomWithIdx(i).GetBonds()[0].GetBondTypeAsDouble())
                   for i in order if mol.GetAtomWithIdx(i).GetAtomicNum() == 0]
    return _TOKENIZER.tokenize(text), first_bonds


def _relabel(tokens: list[str], taken: set[int]) -> list[str]:
    """Ring-closure labels of ``tokens`` moved clear of ``taken``."""
    mapping: dict[int, int] = {}
    free = (n for n in range(1, 100) if n not in taken)
    out = []
    for token in tokens:
        if _RING_LABEL.match(token):
            label = int(token.lstrip("%"))
            if label not in mapping:
                mapping[label] = next(free)
            new = mapping[label]
            out.append(str(new) if new < 10 else f"%{new:02d}")
        else:
            out.append(token)
    return out


def decoration(scaffold: str) -> SmilesTemplate:
    """A scaffold with ``*`` at each attachment point (one span per point).

    Raises:
        MolgenError: unparsable SMILES or no attachment point.
    """
    mol = _parse(scaffold, "scaffold")
    if not _dummies(mol):
        raise MolgenError(f"scaffold {scaffold!r} has no attachment point: mark each with '*' (e.g. 'c1ccc(*)cc1')")
    tokens, first_bonds = _tokens_from(mol)
    segments: list = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _DUMMY.match(token):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            # A dummy ends its chain: the branch's ')' or the end of the string follows.
            segments.append(Span(CLOSE if nxt == ")" else END, first_bond=first_bonds.pop(0)))
            segments.append([])
            i += 2 if nxt == ")" else 1
            continue
        segments[-1].append(token)
        i += 1
    return SmilesTemplate([s for s in segments if not (isinstance(s, list) and not s)], _query(mol), Chem.MolToSmiles(mol))


def growing(fragment: str) -> SmilesTemplate:
    """A fragment with one attachment point to grow from."""
    mol = _parse(fragment, "fragment")
    if len(_dummies(mol)) != 1:
        raise MolgenError(f"fragment {fragment!r} needs exactly one attachment point '*' to grow from")
    template = decoration(fragment)
    template.kind = "grow"
    return template


def linking(first: str, second: str, lengths: tuple[int, int] = (2, 12)) -> SmilesTemplate:
    """Two fragments, each with one ``*``, joined by a linker of ``lengths`` tokens.

    Raises:
        MolgenError: unparsable fragments, not exactly one ``*`` each, or bad lengths.
    """
    a, b = _parse(first, "first fragment"), _parse(second, "second fragment")
    for mol, text in ((a, first), (b, second)):
        if len(_dummies(mol)) != 1:
            raise MolgenError(f"fragment {text!r} needs exactly one attachment point '*' to link through")
    if not 1 <= lengths[0] <= lengths[1]:
        raise MolgenError(f"linker lengths must satisfy 1 <= min <= max, got {lengths}")
    a_tokens, first_bonds = _tokens_from(a)
    # The second fragment written from its attachment atom, its dummy dropped.
    dummy = _dummies(b)[0]
    attach = b.GetAtomWithIdx(dummy).GetNeighbors()[0].GetIdx()
    editable = Chem.RWMol(b)
    editable.RemoveAtom(dummy)
    attach -= 1 if attach > dummy else 0
    b_tokens = _TOKENIZER.tokenize(Chem.MolToSmiles(editable.GetMol(), rootedAtAtom=attach))
    taken = {int(t.lstrip("%")) for t in a_tokens if _RING_LABEL.match(t)}
    b_tokens = _relabel(b_tokens, taken)
    at = next(i for i, t in enumerate(a_tokens) if _DUMMY.match(t))
    segments = [a_tokens[:at], Span(LENGTH, lengths, first_bonds[0]), b_tokens + a_tokens[at + 1:]]
    # What every result contains: both fragments, each attachment atom with one more neighbour (the linker).
    query = Chem.CombineMols(_without_dummies(_query(a)), _without_dummies(_query(b)))
    text = f"{Chem.MolToSmiles(a)} + {Chem.MolToSmiles(b)}"
    return SmilesTemplate([s for s in segments if not (isinstance(s, list) and not s)], query, text, kind="link",
                          extra={"linker_tokens": list(lengths)})


def analog_cuts(smiles: str, max_fraction: float = 0.5) -> list[SmilesTemplate]:
    """Templates that keep a lead but one side of one acyclic single bond:
    the kept side (at least ``1 - max_fraction`` of the heavy atoms) with a
    ``*`` where the other side was. Analogs then come from regrowing it.

    Raises:
        MolgenError: unparsable lead, or no bond to cut.
    """
    mol = _parse(smiles, "lead")
    n = mol.GetNumHeavyAtoms()
    templates, seen = [], set()
    for bond in mol.GetBonds():
        if bond.IsInRing() or bond.GetBondType() != Chem.BondType.SINGLE:
            continue
        pieces = Chem.FragmentOnBonds(mol, [bond.GetIdx()], addDummies=True)
        for frag in Chem.GetMolFrags(pieces, asMols=True, sanitizeFrags=False):
            heavy = sum(1 for a in frag.GetAtoms() if a.GetAtomicNum() > 0)
            if heavy >= (1 - max_fraction) * n and heavy < n:
                for atom in frag.GetAtoms():
                    if atom.GetAtomicNum() == 0:
                        atom.SetIsotope(0)
                text = Chem.MolToSmiles(frag)
                if text not in seen:
                    seen.add(text)
                    template = decoration(text)
                    template.kind = "analog"
                    templates.append(template)
    if not templates:
        raise MolgenError(f"lead {smiles!r} has no acyclic single bond whose smaller side could be regrown")
    return templates


@dataclass
class _Cursor:
    segment: int = 0
    position: int = 0  # within a forced segment
    base_depth: int = 0
    frozen: frozenset = frozenset()
    used: int = 0
    length: int = 0  # drawn tokens of a LENGTH span
    done: bool = False


class TemplateConstraint(DecodingConstraint):
    """Writes a :class:`SmilesTemplate`: forced tokens one-hot, spans under
    :class:`SmilesSyntax` with the template's rings and branches left alone.

    Args:
        template: The template.
        vocab: The model's vocabulary.
        seed: Seed of the linker lengths drawn per row.
        max_span: Most tokens a span ended by the model may take.

    Raises:
        MolgenError: a template token not in ``vocab``.
    """

    def __init__(self, template: SmilesTemplate, vocab: Vocabulary, seed: int = 0, max_span: int = 40) -> None:
        self.template = template
        self.syntax = SmilesSyntax(vocab)
        self.vocab = vocab
        self.max_span = max_span
        self.rng = np.random.default_rng(seed)
        self.segments: list = []
        for segment in template.segments:
            if isinstance(segment, Span):
                self.segments.append(segment)
                continue
            missing = [t for t in segment if t not in vocab.stoi]
            if missing:
                raise MolgenError(f"{template.kind} {template.text!r}: token {missing[0]!r} is not in the model's "
                                  "vocabulary, so the model cannot write it; choose a model trained on such molecules")
            self.segments.append(np.array([vocab.stoi[t] for t in segment]))
        self.starts = np.isin(self.syntax.kind, (ATOM, BOND))
        self.close_id = vocab.stoi.get(")")
        if self.close_id is None and any(isinstance(s, Span) and s.end == CLOSE for s in self.segments):
            raise MolgenError("the model's vocabulary has no ')' token: it cannot write branches")
        # Tokens the template still needs after each segment: its forced tokens, and an atom
        # and an end token for each later span, so a span leaves room for what follows.
        self.after = [0] * len(self.segments)
        needed = 0
        for k in range(len(self.segments) - 1, -1, -1):
            self.after[k] = needed
            segment = self.segments[k]
            needed += segment.lengths[0] if isinstance(segment, Span) and segment.end == LENGTH else (
                2 if isinstance(segment, Span) else len(segment))
        self._cursors: list[_Cursor] = []

    def reset(self, n: int, max_tokens: int) -> None:
        """Start ``n`` rows of at most ``max_tokens`` tokens (EOS included)."""
        self.syntax.reset(n, max_tokens)
        self._cursors = [_Cursor() for _ in range(n)]
        for r in range(n):
            self._enter(r)

    def _enter(self, r: int) -> None:
        """Set up the segment the cursor of row ``r`` now points at."""
        cursor = self._cursors[r]
        if cursor.segment >= len(self.segments):
            cursor.done = True
            return
        segment = self.segments[cursor.segment]
        if isinstance(segment, Span):
            row = self.syntax._rows[r]
            cursor.base_depth = len(row.branches)
            cursor.frozen = frozenset(row.rings)
            cursor.used = 0
            if row.current >= 0:  # the attachment atom keeps for the span only what later tokens leave it
                row.free[row.current] = min(row.free[row.current], segment.first_bond)
            if segment.end == LENGTH:
                cursor.length = int(self.rng.integers(segment.lengths[0], segment.lengths[1] + 1))
        else:
            cursor.position = 0

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        """One-hot forced tokens, span tokens under the syntax, the span's end when it may end."""
        out = np.zeros((len(rows), len(self.vocab)), dtype=bool)
        for j, r in enumerate(rows):
            cursor = self._cursors[r]
            if cursor.done:
                out[j, self.vocab.eos_id] = True
                continue
            segment = self.segments[cursor.segment]
            if not isinstance(segment, Span):
                out[j, segment[cursor.position]] = True
                continue
            row = self.syntax._rows[r]
            exact = segment.end == LENGTH
            room = row.limit - row.emitted + cursor.used - self.after[cursor.segment] - 1  # the span's end token
            budget = cursor.length if exact else min(self.max_span, room)
            left = budget - cursor.used - 1
            mask = self.syntax.allowed_in_span(r, cursor.base_depth, cursor.frozen, left, exact, must_continue=exact)
            if cursor.used == 0:  # the span starts with its bond or atom: nothing else on the attachment atom
                mask &= self.starts
            complete = cursor.used > 0 and self.syntax.span_complete(r, cursor.base_depth, cursor.frozen)
            if complete and segment.end == CLOSE:
                mask[self.close_id] = True
            elif complete and segment.end == END:
                mask[self.vocab.eos_id] = True
            if not mask.any():  # a dead end the local rules did not foresee: let the model go on
                mask[:] = True
                self.syntax.dead_ends += 1
            out[j] = mask
        return out

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Feed each row's token and move its cursor."""
        for r, token in zip(rows, tokens):
            r, token = int(r), int(token)
            cursor = self._cursors[r]
            if cursor.done:
                continue
            segment = self.segments[cursor.segment]
            if not isinstance(segment, Span):
                self.syntax._advance_row(self.syntax._rows[r], token)
                cursor.position += 1
                if cursor.position == len(segment):
                    cursor.segment += 1
                    self._enter(r)
                continue
            row = self.syntax._rows[r]
            ends = ((segment.end == CLOSE and token == self.close_id and len(row.branches) == cursor.base_depth)
                    or (segment.end == END and token == self.vocab.eos_id))
            if token != self.vocab.eos_id:
                self.syntax._advance_row(row, token)
            cursor.used += 1
            if ends or (segment.end == LENGTH and cursor.used >= cursor.length):
                cursor.segment += 1
                self._enter(r)
            if token == self.vocab.eos_id:
                cursor.done = True


def template_texts(templates: Sequence[SmilesTemplate]) -> list[str]:
    """The templates as text, for reports."""
    return [t.text for t in templates]


__all__ = ["Span", "SmilesTemplate", "TemplateConstraint", "decoration", "growing", "linking", "analog_cuts", "EOS"]
