"""The crystal domain: pymatgen ``Structure`` objects with a tokens view
(compact text) and a graph view (periodic radius graph)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from pymatgen.core import Element, Structure

from molgen.core.errors import ParseError
from molgen.core.grammar import TokenGrammar
from molgen.core.registry import DOMAINS
from molgen.domains.base import Domain, GraphSpec
from molgen.domains.crystal.exclusion import SiteExclusion
from molgen.domains.crystal.graph import graph_to_structure, structure_to_graph
from molgen.domains.crystal.io import parse_structure, to_cif
from molgen.domains.crystal.matching import MatcherSettings, formula_key, same_structure
from molgen.domains.crystal.text import CrystalTextCodec, CrystalTokenizer
from molgen.domains.crystal.validity import (
    ValidityRules,
    composition_is_valid,
    structure_is_valid,
)


#: Most sites in one cell (documented limit; a larger cell is a parse error).
MAX_SITES = 1_000

class CrystalDomain(Domain[Structure]):
    """Periodic crystals.

    "Valid" is CDVAE's rule (structurally and compositionally valid, see
    :class:`ValidityRules`); "same" is equal reduced formula plus
    ``StructureMatcher`` (see :class:`MatcherSettings`); the text of a crystal
    is the compact encoding of :class:`CrystalTextCodec`, and ``parse`` also
    reads CIF and POSCAR text.

    Args:
        codec: Text precision.
        rules: Validity rules.
        matcher: Matching tolerances.
        graph_cutoff: Radius (A) of the graph view's neighbour search.
        node_types: Element symbols of the graph view's node categories
            (default: learned by :meth:`fit_graph`).
    """

    name = "crystal"
    views = ("tokens", "graph")
    export_format = "cif"
    multiline_text = True

    def __init__(
        self,
        codec: CrystalTextCodec | None = None,
        rules: ValidityRules | None = None,
        matcher: MatcherSettings | None = None,
        graph_cutoff: float = 6.0,
        node_types: Sequence[str] | None = None,
    ) -> None:
        self.codec = codec or CrystalTextCodec()
        self.rules = rules or ValidityRules()
        self.matcher = matcher or MatcherSettings()
        self.graph_cutoff = graph_cutoff
        self.tokenizer = CrystalTokenizer()
        self.node_types: tuple[str, ...] | None = tuple(node_types) if node_types else None

    def parse(self, text: str) -> Structure:
        """CIF, POSCAR or compact text -> structure.

        Raises:
            ParseError: malformed, empty or disordered input, or more than
                :data:`MAX_SITES` sites.
        """
        structure = parse_structure(text)
        if len(structure) > MAX_SITES:  # neighbour lists and matchers grow fast with the cell
            raise ParseError(f"structure of {len(structure):,} sites is larger than the limit of {MAX_SITES:,}")
        return structure

    def format(self, obj: Structure) -> str:
        """Structure -> compact text (sites sorted by element, then coordinates)."""
        return self.codec.encode(obj)

    def export(self, obj: Structure) -> str:
        """Structure -> CIF text."""
        return to_cif(obj)

    def is_valid(self, obj: Structure | None) -> bool:
        """Structurally and compositionally valid under ``self.rules``."""
        if obj is None or len(obj) == 0:
            return False
        return structure_is_valid(obj, self.rules) and composition_is_valid(obj.composition, self.rules)

    def key(self, obj: Structure) -> str:
        """Reduced formula; crystals with equal keys are told apart by :meth:`same`."""
        return formula_key(obj)

    def same(self, a: Structure, b: Structure) -> bool:
        """Same reduced formula and matched by ``StructureMatcher``."""
        return same_structure(a, b, self.matcher)

    def model_text(self, obj: Structure, original: str, canonical: bool = True) -> str:
        """Compact text of ``obj``: CIF or POSCAR input is always re-encoded."""
        from molgen.domains.crystal.text import looks_like_crystal_text

        return original if not canonical and looks_like_crystal_text(original) else self.format(obj)

    def augment(self, text: str, rng: np.random.Generator) -> str:
        """The same crystal translated by a random fractional shift with its
        sites in random order."""
        structure = self.parse(text)
        order = rng.permutation(len(structure)).tolist()
        return self.codec.encode(structure, order=order, shift=rng.random(3))

    def token_grammar(self) -> TokenGrammar:
        """The compact text layout of this domain's codec (see
        :meth:`CrystalTextCodec.grammar`): constrained sampling emits only
        texts that parse."""
        return self.codec.grammar()

    def decoding_constraint(self) -> SiteExclusion:
        """Site exclusion (:class:`SiteExclusion`): every new site at least
        ``rules.min_distance`` from the earlier ones, so decoding under the
        grammar and this constraint never puts two atoms on one spot."""
        return SiteExclusion(self.tokenizer.vocab, self.codec.coord_decimals, self.rules.min_distance)

    def fit_graph(self, objs: Sequence[Structure]) -> "CrystalDomain":
        """Use the elements of ``objs`` (in atomic-number order) as node types."""
        elements = {site.specie.symbol for s in objs for site in s}
        self.node_types = tuple(sorted(elements, key=lambda e: Element(e).Z))
        return self

    def graph_spec(self) -> GraphSpec:
        """Element node types, no generated edges, periodic coordinates."""
        if not self.node_types:
            raise RuntimeError("the crystal graph view has no node types yet: call fit_graph() on training crystals")
        return GraphSpec(node_types=self.node_types, edge_types=(), periodic=True)

    def to_graph(self, obj: Structure):
        """Structure -> PyG ``Data`` (see :func:`structure_to_graph`), with
        ``node_type`` once node types are fitted.

        Raises:
            ParseError: an element outside the fitted node types.
        """
        data = structure_to_graph(obj, cutoff=self.graph_cutoff)
        if self.node_types:
            index = {e: i for i, e in enumerate(self.node_types)}
            try:
                data.node_type = torch.tensor([index[site.specie.symbol] for site in obj], dtype=torch.long)
            except KeyError as exc:
                raise ParseError(f"element {exc.args[0]} of {obj.composition.reduced_formula} is not among the graph view's node types") from None
        return data

    def from_graph(self, data) -> Structure | None:
        """PyG ``Data`` -> structure or None; ``node_type`` (indices into the
        fitted node types) stands in for ``atomic_numbers`` when absent."""
        if getattr(data, "atomic_numbers", None) is None and getattr(data, "node_type", None) is not None:
            try:
                types = data.node_type.detach().cpu().long()
                if not self.node_types or types.numel() == 0 or types.min() < 0 or types.max() >= len(self.node_types):
                    return None
                numbers = torch.tensor([Element(self.node_types[i]).Z for i in types.tolist()])
            except (AttributeError, TypeError, ValueError):
                return None
            data = data.clone()
            data.atomic_numbers = numbers
        return graph_to_structure(data)

    def raw_text(self, data) -> str | None:
        """None: a graph that builds no structure has no text to record."""
        return None

    def to_config(self) -> dict[str, Any]:
        """JSON description (no vocabulary: it is the fixed element vocabulary)."""
        return {
            "name": self.name,
            "codec": self.codec.to_config(),
            "rules": self.rules.to_dict(),
            "matcher": self.matcher.to_dict(),
            "graph_cutoff": self.graph_cutoff,
            "node_types": list(self.node_types or ()),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CrystalDomain":
        """Rebuild from :meth:`to_config` output."""
        return cls(
            codec=CrystalTextCodec(**config.get("codec", {})),
            rules=ValidityRules(**config.get("rules", {})),
            matcher=MatcherSettings(**config.get("matcher", {})),
            graph_cutoff=config.get("graph_cutoff", 6.0),
            node_types=config.get("node_types") or None,
        )


DOMAINS.register("crystal", CrystalDomain)
