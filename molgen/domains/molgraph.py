"""Molecular graphs: the graph view of small molecules (atoms as nodes, bonds
as edges), for graph backbones such as DiGress-style discrete diffusion.

Objects, text, validity and the canonical key are those of SMILES (the
domain subclasses :class:`SmilesDomain`), so graph samples are scored exactly
like SMILES samples.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from rdkit import Chem, rdBase

from molgen.core.errors import ParseError
from molgen.core.registry import DOMAINS
from molgen.domains.base import GraphSpec
from molgen.domains.smiles import SmilesDomain

FragmentPolicy = Literal["largest", "keep", "reject"]
FRAGMENT_POLICIES = ("largest", "keep", "reject")

KEKULE_EDGE_TYPES = ("none", "single", "double", "triple")
AROMATIC_EDGE_TYPES = (*KEKULE_EDGE_TYPES, "aromatic")

_BOND_TYPES = {
    "single": Chem.BondType.SINGLE,
    "double": Chem.BondType.DOUBLE,
    "triple": Chem.BondType.TRIPLE,
    "aromatic": Chem.BondType.AROMATIC,
}

# "C", "N+", "O-", "N+2", "O-2", "*" (dummy atom).
_NODE_TYPE_PATTERN = re.compile(r"^(\*|[A-Z][a-z]?)(?:([+-])(\d+)?)?$")

# Bound on the sanitisation attempts spent guessing which aromatic nitrogens
# carry a hydrogen (kekulize=False only), so a pathological sample cannot stall.
_MAX_NH_ATTEMPTS = 256


def node_type_name(symbol: str, charge: int) -> str:
    """Node category of an atom: element symbol plus formal charge.

    Args:
        symbol: Element symbol ("C", "Cl", "*").
        charge: Formal charge.

    Returns:
        ``"C"``, ``"N+"``, ``"O-"``, ``"N+2"``, ``"O-2"``...
    """
    if charge == 0:
        return symbol
    sign = "+" if charge > 0 else "-"
    return f"{symbol}{sign}{abs(charge)}" if abs(charge) > 1 else f"{symbol}{sign}"


def parse_node_type(name: str) -> tuple[int, int]:
    """Node category -> (atomic number, formal charge).

    Raises:
        ValueError: not a valid category (unknown element, bad charge).
    """
    match = _NODE_TYPE_PATTERN.match(name)
    if match is None:
        raise ValueError(f"invalid node type {name!r}: expected an element symbol and optional charge such as 'N+' or 'O-2'")
    symbol, sign, magnitude = match.groups()
    with rdBase.BlockLogs():
        try:
            atomic_num = Chem.GetPeriodicTable().GetAtomicNumber(symbol)
        except RuntimeError:
            raise ValueError(f"invalid node type {name!r}: unknown element {symbol!r}") from None
    charge = 0
    if sign is not None:
        charge = (int(magnitude) if magnitude else 1) * (1 if sign == "+" else -1)
    return atomic_num, charge


def _as_int_array(value: Any, ndim: int) -> np.ndarray | None:
    """Tensor/array/list -> int64 array of ``ndim`` dimensions, or None when
    the value is missing, has another rank, or holds non-finite or
    non-integral numbers."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_complex():
            return None
        value = value.double().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        return None
    return arr.astype(np.int64)


def _dense_to_edges(adjacency: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Dense [n, n] edge-type matrix -> (edge_index [2, E], edge_type [E]) in
    row-major order, or None when malformed."""
    adj = _as_int_array(adjacency, 2)
    if adj is None or adj.shape != (n, n):
        return None
    rows, cols = np.nonzero(adj)
    return np.stack([rows, cols]), adj[rows, cols]


class MolGraphDomain(SmilesDomain):
    """Molecules as graphs: nodes are heavy atoms typed by element and formal
    charge, edges are bonds typed by bond order.

    Objects are sanitized RDKit ``Mol``; parsing, formatting, validity and the
    canonical key are inherited from :class:`SmilesDomain`, so the text of a
    molecule is its SMILES and SMILES data sets train it.

    The graph view is 2D topology: hydrogens are implicit (recomputed by RDKit
    when a graph is turned back into a molecule), and chirality, E/Z,
    isotopes and radicals are dropped.

    Args:
        kekulize: Encode aromatic rings in a Kekulé form, with edge types
            ``("none", "single", "double", "triple")``. With False an
            ``"aromatic"`` edge type is added and aromatic bonds are kept; the
            hydrogen of aromatic ``[nH]`` is then not encoded and is restored
            by search when decoding (it may land on an equivalent nitrogen,
            giving another tautomer).
        fragments: What :meth:`from_graph` does with a disconnected graph:
            ``"largest"`` keeps the fragment with the most heavy atoms
            (DiGress's evaluation protocol), ``"keep"`` keeps all fragments
            (a dotted SMILES), ``"reject"`` returns None.
        node_types: Fixed node categories; None learns them in
            :meth:`fit_graph`.

    Raises:
        ValueError: unknown fragment policy or invalid node type.
    """

    name = "molgraph"
    views = ("graph",)
    reads_data_of = ("smiles",)

    def __init__(
        self,
        kekulize: bool = True,
        fragments: FragmentPolicy = "largest",
        node_types: Sequence[str] | None = None,
    ) -> None:
        # No tokens view: SmilesDomain's tokenizer is deliberately not built.
        self.tokenizer = None
        if fragments not in FRAGMENT_POLICIES:
            raise ValueError(f"fragments must be one of {FRAGMENT_POLICIES}, got {fragments!r}")
        self.kekulize = bool(kekulize)
        self.fragments = fragments
        self.edge_types = KEKULE_EDGE_TYPES if self.kekulize else AROMATIC_EDGE_TYPES
        self._preset = node_types is not None
        self.node_types: tuple[str, ...] | None = None
        if node_types is not None:
            self._set_node_types(tuple(node_types))

    def _set_node_types(self, node_types: tuple[str, ...]) -> None:
        if len(set(node_types)) != len(node_types):
            raise ValueError(f"duplicate node types in {list(node_types)}")
        self._atoms = [parse_node_type(t) for t in node_types]
        self._index = {t: i for i, t in enumerate(node_types)}
        self.node_types = node_types

    # -- categories -------------------------------------------------------
    def _prepare(self, mol: Chem.Mol) -> Chem.Mol:
        """Heavy-atom copy of ``mol`` (Kekulé when ``kekulize``)."""
        with rdBase.BlockLogs():
            try:
                if any(atom.GetAtomicNum() == 1 for atom in mol.GetAtoms()):
                    mol = Chem.RemoveHs(mol)
                mol = Chem.Mol(mol)
                if self.kekulize:
                    Chem.Kekulize(mol, clearAromaticFlags=True)
            except Exception as exc:  # noqa: BLE001 - RDKit raises several sanitization classes
                raise ParseError(f"cannot convert {self._smiles(mol)!r} to a graph: {exc}") from None
        return mol

    @staticmethod
    def _smiles(mol: Chem.Mol) -> str:
        try:
            return Chem.MolToSmiles(mol)
        except Exception:  # noqa: BLE001
            return "<unprintable molecule>"

    @staticmethod
    def _atom_type(atom: Chem.Atom) -> str:
        return node_type_name(atom.GetSymbol(), atom.GetFormalCharge())

    def fit_graph(self, objs: Sequence[Chem.Mol]) -> MolGraphDomain:
        """Learn the node categories from molecules; returns self.

        Categories are sorted by descending count, ties by name. When node
        types were given to the constructor (or restored by
        :meth:`from_config`) they are kept and only checked against ``objs``.

        Args:
            objs: Sanitized molecules.

        Returns:
            self.

        Raises:
            ValueError: ``objs`` is empty (and no node types were given).
            ParseError: with preset node types, a molecule holds another category.
        """
        counts: Counter[str] = Counter()
        for mol in objs:
            prepared = self._prepare(mol)
            for atom in prepared.GetAtoms():
                name = self._atom_type(atom)
                if self._preset and name not in self._index:
                    raise ParseError(self._unknown_message(name, mol))
                counts[name] += 1
        if self._preset:
            return self
        if not counts:
            raise ValueError("fit_graph() needs at least one molecule with atoms")
        self._set_node_types(tuple(sorted(counts, key=lambda t: (-counts[t], t))))
        return self

    def _unknown_message(self, name: str, mol: Chem.Mol) -> str:
        return (
            f"node type {name!r} of {self._smiles(mol)!r} is not among the fitted node types "
            f"{list(self.node_types or ())}"
        )

    def graph_spec(self) -> GraphSpec:
        """The node and edge categories.

        Raises:
            RuntimeError: before :meth:`fit_graph` (and without preset node types).
        """
        return GraphSpec(node_types=self._require_node_types(), edge_types=self.edge_types, periodic=False)

    def _require_node_types(self) -> tuple[str, ...]:
        if self.node_types is None:
            raise RuntimeError(
                "molgraph domain has no node types yet: call fit_graph() on training molecules or load a saved model"
            )
        return self.node_types

    # -- molecule -> graph ------------------------------------------------
    def to_graph(self, obj: Chem.Mol):
        """Molecule -> PyG ``Data``.

        Args:
            obj: Sanitized molecule.

        Returns:
            ``Data`` with ``node_type [N]`` (long, index into node types),
            ``edge_index [2, E]`` (each bond in both directions, consecutive),
            ``edge_type [E]`` (long, >= 1, index into edge types) and
            ``num_nodes``.

        Raises:
            RuntimeError: before :meth:`fit_graph`.
            ParseError: a node category outside the fitted node types, a bond
                type the edge types lack (dative...), or no atoms.
        """
        from torch_geometric.data import Data

        self._require_node_types()
        mol = self._prepare(obj)
        if mol.GetNumAtoms() == 0:
            raise ParseError("cannot convert a molecule without atoms to a graph")
        node_type = []
        for atom in mol.GetAtoms():
            name = self._atom_type(atom)
            if name not in self._index:
                raise ParseError(self._unknown_message(name, obj))
            node_type.append(self._index[name])
        edge_codes = {name: i for i, name in enumerate(self.edge_types)}
        edges, types = [], []
        for bond in mol.GetBonds():
            code = edge_codes.get(str(bond.GetBondType()).lower())
            if code is None or code == 0:
                raise ParseError(
                    f"bond type {bond.GetBondType()!s} of {self._smiles(obj)!r} has no edge type "
                    f"(edge types: {list(self.edge_types[1:])})"
                )
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            edges += [(i, j), (j, i)]
            types += [code, code]
        return Data(
            node_type=torch.tensor(node_type, dtype=torch.long),
            edge_index=torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous(),
            edge_type=torch.tensor(types, dtype=torch.long),
            num_nodes=len(node_type),
        )

    # -- graph -> molecule ------------------------------------------------
    def _build(self, node_type: Any, edge_index: Any, edge_type: Any) -> Chem.RWMol | None:
        """Unsanitized molecule from node categories and an edge list, or
        None when the input is malformed. Edges of type 0 and self-loops are
        ignored; the first listed direction of a bond wins."""
        if self.node_types is None:
            return None
        nodes = _as_int_array(node_type, 1)
        if nodes is None or len(nodes) == 0 or nodes.min() < 0 or nodes.max() >= len(self.node_types):
            return None
        n = len(nodes)
        if edge_index is None and edge_type is None:
            pairs, kinds = np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
        else:
            pairs, kinds = _as_int_array(edge_index, 2), _as_int_array(edge_type, 1)
            if pairs is None or kinds is None or pairs.shape != (2, len(kinds)):
                return None
        if len(kinds) and (pairs.min() < 0 or pairs.max() >= n or kinds.min() < 0 or kinds.max() >= len(self.edge_types)):
            return None
        mol = Chem.RWMol()
        for idx in nodes:
            atomic_num, charge = self._atoms[idx]
            atom = Chem.Atom(atomic_num)
            atom.SetFormalCharge(charge)
            mol.AddAtom(atom)
        seen: set[tuple[int, int]] = set()
        for (i, j), kind in zip(pairs.T.tolist(), kinds.tolist()):
            key = (min(i, j), max(i, j))
            if kind == 0 or i == j or key in seen:
                continue
            seen.add(key)
            bond_type = _BOND_TYPES[self.edge_types[kind]]
            mol.AddBond(i, j, bond_type)
            if bond_type == Chem.BondType.AROMATIC:
                mol.GetBondBetweenAtoms(i, j).SetIsAromatic(True)
                mol.GetAtomWithIdx(i).SetIsAromatic(True)
                mol.GetAtomWithIdx(j).SetIsAromatic(True)
        return mol

    def _sanitize(self, mol: Chem.RWMol) -> Chem.Mol | None:
        """Sanitized copy of ``mol`` or None (over-valent atom, impossible
        aromatic system...)."""
        candidate = Chem.Mol(mol)
        try:
            Chem.SanitizeMol(candidate)
            return candidate
        except Chem.KekulizeException:
            if self.kekulize:
                return None
        except Exception:  # noqa: BLE001 - valence and other sanitization errors
            return None
        return self._place_aromatic_hydrogens(mol)

    @staticmethod
    def _kekulize_problem(mol: Chem.Mol) -> Chem.Mol | set[int] | None:
        """Sanitized copy of ``mol``; else the atoms of the aromatic system
        that failed to kekulize; else None (another sanitization error)."""
        candidate = Chem.Mol(mol)
        try:
            Chem.SanitizeMol(candidate)
            return candidate
        except Chem.KekulizeException as exc:
            cause = getattr(exc, "cause", None)
            atoms = set(cause.GetAtomIndices()) if hasattr(cause, "GetAtomIndices") else set()
            return atoms or None
        except Exception:  # noqa: BLE001
            return None

    def _place_aromatic_hydrogens(self, mol: Chem.RWMol) -> Chem.Mol | None:
        """Sanitize an aromatic graph whose pyrrole-type nitrogens lost their
        hydrogen ([nH] has no category of its own).

        Aromatic systems fail to kekulize one at a time; for each, the fewest
        neutral two-connected aromatic nitrogens (those in five-membered
        rings first, then by index) that make it kekulize get one hydrogen.
        The choice among equivalent nitrogens is deterministic but may give
        another tautomer than the source molecule.
        """
        work = Chem.RWMol(mol)
        work.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(work)
        # Plain Python data: RingInfo points into ``work``, which is replaced below.
        in_five_ring = {idx for ring in work.GetRingInfo().AtomRings() if len(ring) == 5 for idx in ring}
        attempts = 0
        state = self._kekulize_problem(work)
        while isinstance(state, set):
            problem = state
            sites = sorted(
                (
                    atom.GetIdx()
                    for atom in work.GetAtoms()
                    if atom.GetIdx() in problem and atom.GetAtomicNum() == 7 and atom.GetIsAromatic()
                    and atom.GetFormalCharge() == 0 and atom.GetDegree() == 2 and atom.GetNumExplicitHs() == 0
                ),
                key=lambda idx: (idx not in in_five_ring, idx),
            )
            fixed = None
            for size in range(1, len(sites) + 1):
                for subset in itertools.combinations(sites, size):
                    attempts += 1
                    if attempts > _MAX_NH_ATTEMPTS:
                        return None
                    trial = Chem.RWMol(work)
                    for idx in subset:
                        trial.GetAtomWithIdx(idx).SetNumExplicitHs(1)
                    outcome = self._kekulize_problem(trial)
                    # Solved when sanitized, or when another system fails now.
                    if isinstance(outcome, Chem.Mol) or (isinstance(outcome, set) and not outcome & problem):
                        fixed, state = trial, outcome
                        break
                if fixed is not None:
                    break
            if fixed is None:
                return None
            work = fixed
        return state

    def _finish(self, mol: Chem.RWMol | None) -> Chem.Mol | None:
        """Sanitize and apply the fragment policy."""
        if mol is None:
            return None
        sanitized = self._sanitize(mol)
        if sanitized is None:
            return None
        frags = Chem.GetMolFrags(sanitized, asMols=True)
        if len(frags) > 1:
            if self.fragments == "reject":
                return None
            if self.fragments == "largest":
                sanitized = max(frags, key=lambda m: m.GetNumHeavyAtoms())  # first wins ties
        return sanitized if sanitized.GetNumAtoms() > 0 else None

    @staticmethod
    def _edge_arrays(data: Any) -> tuple[Any, Any, Any]:
        return (
            getattr(data, "node_type", None),
            getattr(data, "edge_index", None),
            getattr(data, "edge_type", None),
        )

    def from_graph(self, data) -> Chem.Mol | None:
        """PyG ``Data`` (``node_type``, ``edge_index``, ``edge_type``) -> molecule.

        Edges of type 0 and self-loops are ignored and the two directions of
        a bond merged (the first listed wins when they disagree); the
        molecule is sanitized (an atom over its allowed valence gives None)
        and the fragment policy applied.

        Args:
            data: A graph of the view, e.g. a model sample.

        Returns:
            The sanitized molecule, or None for an invalid or malformed graph
            (never raises).
        """
        try:
            with rdBase.BlockLogs():
                return self._finish(self._build(*self._edge_arrays(data)))
        except Exception:  # noqa: BLE001 - a malformed sample is an invalid sample, never a crash
            return None

    def from_dense(self, node_type, adjacency) -> Chem.Mol | None:
        """Dense graph -> molecule, like :meth:`from_graph`.

        Args:
            node_type: Long tensor ``[n]`` of node categories.
            adjacency: Long tensor ``[n, n]`` of edge categories (0: no edge);
                when ``adjacency[i, j]`` and ``adjacency[j, i]`` differ and are
                both non-zero, the one first in row-major order wins.

        Returns:
            The sanitized molecule or None (never raises).
        """
        try:
            with rdBase.BlockLogs():
                return self._finish(self._build_dense(node_type, adjacency))
        except Exception:  # noqa: BLE001
            return None

    def _build_dense(self, node_type: Any, adjacency: Any) -> Chem.RWMol | None:
        nodes = _as_int_array(node_type, 1)
        if nodes is None:
            return None
        edges = _dense_to_edges(adjacency, len(nodes))
        return None if edges is None else self._build(nodes, *edges)

    @staticmethod
    def _raw_smiles(mol: Chem.RWMol | None) -> str | None:
        if mol is None:
            return None
        mol.UpdatePropertyCache(strict=False)  # MolToSmiles needs implicit-H counts
        return Chem.MolToSmiles(mol, canonical=False)

    def raw_text(self, data) -> str | None:
        """SMILES of the molecule a graph describes, without sanitization, to
        record invalid samples.

        Args:
            data: A graph of the view.

        Returns:
            The (possibly chemically invalid) SMILES, or None when the graph
            is malformed (never raises).
        """
        try:
            with rdBase.BlockLogs():
                return self._raw_smiles(self._build(*self._edge_arrays(data)))
        except Exception:  # noqa: BLE001
            return None

    def raw_text_dense(self, node_type, adjacency) -> str | None:
        """:meth:`raw_text` for a dense graph (see :meth:`from_dense`)."""
        try:
            with rdBase.BlockLogs():
                return self._raw_smiles(self._build_dense(node_type, adjacency))
        except Exception:  # noqa: BLE001
            return None

    # -- persistence --------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """JSON description: options and node types (None before fitting)."""
        return {
            "name": self.name,
            "kekulize": self.kekulize,
            "fragments": self.fragments,
            "node_types": list(self.node_types) if self.node_types is not None else None,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MolGraphDomain:
        """Rebuild from :meth:`to_config` output (fitted node types included)."""
        return cls(
            kekulize=config.get("kekulize", True),
            fragments=config.get("fragments", "largest"),
            node_types=config.get("node_types"),
        )


DOMAINS.register("molgraph", MolGraphDomain)
