"""domains/molgraph: node types, molecule <-> graph round trips, the fragment
policies, robustness to malformed graphs, persistence and SMILES data sets."""

from __future__ import annotations

import pytest
import torch
from conftest import needs_mirror
from rdkit import Chem
from torch_geometric.data import Data

from molgen.core.errors import ParseError
from molgen.core.registry import DOMAINS
from molgen.datasets import load_texts
from molgen.domains import MolGraphDomain
from molgen.domains.molgraph import node_type_name, parse_node_type

ROUND_TRIP = [
    "CCO",
    "C[N+](C)(C)C",
    "CC(=O)[O-]",
    "C[N+](=O)[O-]",
    "c1cc[nH]c1",
    "c1c[nH]cn1",
    "c1ccncc1",
    "c1ccsc1",
    "Clc1ccc(Br)cc1F",
    "N#Cc1ccccc1",
    "C#CCO",
    "C[C@@H](N)C(=O)O",
    "c1ccc2[nH]ccc2c1",
    "OC(=O)C/C=C/CI",
]


def flat(smiles: str) -> str:
    """Canonical SMILES without stereo: what the 2D graph view keeps."""
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)


def fitted(smiles=ROUND_TRIP, **options) -> MolGraphDomain:
    domain = MolGraphDomain(**options)
    return domain.fit_graph([domain.parse(s) for s in smiles])


def graph(node_type, edges=(), edge_types=None) -> Data:
    """Data from node indices and undirected (i, j, type) edges."""
    index = [[i, j] for i, j, _ in edges] + [[j, i] for i, j, _ in edges]
    kinds = [t for *_, t in edges] * 2
    return Data(
        node_type=torch.tensor(node_type, dtype=torch.long),
        edge_index=torch.tensor(index, dtype=torch.long).reshape(-1, 2).t(),
        edge_type=torch.tensor(kinds if edge_types is None else edge_types, dtype=torch.long),
        num_nodes=len(node_type),
    )


@pytest.mark.parametrize("kekulize", [True, False])
def test_round_trip_keeps_the_molecule(kekulize):
    domain = fitted(kekulize=kekulize)
    for smiles in ROUND_TRIP:
        data = domain.to_graph(domain.parse(smiles))
        assert data.node_type.dtype == torch.long and data.edge_type.dtype == torch.long
        assert data.edge_index.shape == (2, data.edge_type.numel())
        assert data.edge_type.min() >= 1 and data.num_nodes == data.node_type.numel()
        mol = domain.from_graph(data)
        assert mol is not None, smiles
        assert Chem.MolToSmiles(mol) == flat(smiles)
        assert domain.is_valid(mol)


def test_edge_types_and_aromatic_bonds():
    assert fitted().graph_spec().edge_types == ("none", "single", "double", "triple")
    kekule = fitted(["c1ccccc1"]).to_graph(Chem.MolFromSmiles("c1ccccc1"))
    assert sorted(kekule.edge_type.tolist()) == [1] * 6 + [2] * 6
    aromatic = fitted(["c1ccccc1"], kekulize=False)
    assert aromatic.graph_spec().edge_types[-1] == "aromatic"
    assert aromatic.to_graph(Chem.MolFromSmiles("c1ccccc1")).edge_type.tolist() == [4] * 12


def test_node_types_sorted_by_count_then_name_and_spec():
    domain = fitted(["CCO", "CC(=O)[O-]", "C[N+](C)(C)C", "NCl"])
    spec = domain.graph_spec()
    assert spec.node_types == ("C", "O", "Cl", "N", "N+", "O-")
    assert spec.periodic is False
    assert domain.to_graph(domain.parse("CCO")).node_type.tolist() == [0, 0, 1]
    assert domain.name == "molgraph" and domain.views == ("graph",) and domain.tokenizer is None
    assert domain.reads("smiles") and domain.reads("molgraph") and not domain.reads("crystal")
    assert DOMAINS.get("molgraph") is MolGraphDomain


def test_node_type_names():
    assert [node_type_name(s, c) for s, c in [("C", 0), ("N", 1), ("O", -1), ("N", 2), ("O", -2)]] == [
        "C", "N+", "O-", "N+2", "O-2",
    ]
    assert parse_node_type("O-2") == (8, -2) and parse_node_type("Cl") == (17, 0)
    for bad in ("Xx", "c", "N++", ""):
        with pytest.raises(ValueError):
            parse_node_type(bad)


def test_explicit_hydrogens_are_removed_and_h2_kept():
    domain = fitted(["CCO", "[H][H]"])
    assert "H" in domain.graph_spec().node_types
    data = domain.to_graph(Chem.AddHs(Chem.MolFromSmiles("CCO")))
    assert data.num_nodes == 3
    assert Chem.MolToSmiles(domain.from_graph(domain.to_graph(domain.parse("[H][H]")))) == "[H][H]"


def test_graph_spec_before_fitting_raises():
    domain = MolGraphDomain()
    with pytest.raises(RuntimeError, match="fit_graph"):
        domain.graph_spec()
    with pytest.raises(RuntimeError, match="fit_graph"):
        domain.to_graph(domain.parse("CCO"))
    assert domain.from_graph(graph([0])) is None


def test_unknown_node_type_raises_naming_it():
    domain = fitted(["CCO"])
    with pytest.raises(ParseError, match=r"'N\+'.*C\[N\+\]\(C\)\(C\)C"):
        domain.to_graph(domain.parse("C[N+](C)(C)C"))
    preset = MolGraphDomain(node_types=["C", "O"])
    with pytest.raises(ParseError, match="'N'"):
        preset.fit_graph([preset.parse("CN")])


def test_unsupported_bond_type_raises():
    domain = MolGraphDomain(node_types=["C", "N", "O", "Cu"])
    mol = Chem.RWMol(Chem.MolFromSmiles("CN.[Cu]"))
    mol.AddBond(1, 2, Chem.BondType.DATIVE)
    with pytest.raises(ParseError, match="DATIVE"):
        domain.to_graph(mol)


def test_over_valent_carbon_is_invalid_and_raw_text_records_it():
    domain = MolGraphDomain(node_types=["C"])
    data = graph([0] * 6, [(0, k, 1) for k in range(1, 6)])
    assert domain.from_graph(data) is None
    raw = domain.raw_text(data)
    assert Chem.MolFromSmiles(raw, sanitize=False).GetNumAtoms() == 6
    assert domain.try_parse(raw) is None
    assert domain.from_graph(graph([0] * 5, [(0, k, 1) for k in range(1, 5)])) is not None


def test_fragment_policies():
    data = graph([0, 0, 0, 1, 0], [(0, 1, 1), (1, 2, 1), (3, 4, 1)])  # CCC + OC
    results = {}
    for policy in ("largest", "keep", "reject"):
        mol = MolGraphDomain(fragments=policy, node_types=["C", "O"]).from_graph(data)
        results[policy] = None if mol is None else Chem.MolToSmiles(mol)
    assert results == {"largest": "CCC", "keep": "CCC.CO", "reject": None}
    with pytest.raises(ValueError, match="fragments"):
        MolGraphDomain(fragments="smallest")


def test_edges_merged_zero_types_and_self_loops_ignored():
    domain = MolGraphDomain(node_types=["C", "O"])
    # Directions disagree (double first, single second): the first listed wins.
    data = Data(
        node_type=torch.tensor([0, 1, 0]),
        edge_index=torch.tensor([[0, 1, 1, 1, 2], [1, 0, 1, 2, 1]]),
        edge_type=torch.tensor([2, 1, 1, 0, 0]),
    )
    assert Chem.MolToSmiles(domain.from_graph(data)) == "C=O"  # fragment policy drops the lone C


def test_from_dense_matches_from_graph():
    domain = fitted()
    for smiles in ("C[N+](=O)[O-]", "c1cc[nH]c1", "N#Cc1ccccc1"):
        data = domain.to_graph(domain.parse(smiles))
        n = data.num_nodes
        adjacency = torch.zeros(n, n, dtype=torch.long)
        adjacency[data.edge_index[0], data.edge_index[1]] = data.edge_type
        mol = domain.from_dense(data.node_type, adjacency)
        assert Chem.MolToSmiles(mol) == flat(smiles)
        assert domain.raw_text_dense(data.node_type, adjacency) is not None
    assert domain.from_dense(torch.tensor([0, 0]), torch.zeros(3, 3, dtype=torch.long)) is None


@pytest.mark.parametrize(
    "data",
    [
        graph([0, 0], [(0, 5, 1)]),  # edge index out of range
        graph([0, 0], [(0, 1, 9)]),  # edge type out of range
        graph([0, 0], [(0, 1, -1)]),  # negative edge type
        graph([0, 99]),  # node type out of range
        graph([0, -1]),  # negative node type
        graph([]),  # empty graph
        Data(node_type=torch.tensor([0.0, float("nan")])),
        Data(node_type=torch.tensor([0.5, 1.0])),
        Data(node_type=torch.tensor([[0, 1]])),  # wrong rank
        Data(node_type=torch.tensor([0, 0]), edge_index=torch.tensor([0, 1]), edge_type=torch.tensor([1])),
        Data(node_type=torch.tensor([0, 0]), edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([1, 1])),
        Data(node_type=torch.tensor([0, 0]), edge_index=torch.tensor([[0], [1]])),  # no edge_type
        Data(node_type=torch.tensor([0, 0]), edge_index=torch.tensor([[0.0], [float("nan")]]), edge_type=torch.tensor([1])),
        Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([1])),  # no node_type
        "not a graph",
        None,
    ],
)
def test_malformed_graphs_give_none(data):
    domain = fitted()
    assert domain.from_graph(data) is None
    assert domain.raw_text(data) is None


def test_aromatic_graph_without_valid_kekule_form_is_invalid():
    domain = fitted(kekulize=False)
    c = domain.graph_spec().node_types.index("C")
    ring = [(k, (k + 1) % 5, 4) for k in range(5)]  # five aromatic carbons: no Kekulé form
    assert domain.from_graph(graph([c] * 5, ring)) is None


def test_config_round_trip_keeps_options_and_node_types():
    domain = fitted(["CC(=O)[O-]", "CN"], kekulize=False, fragments="keep")
    config = domain.to_config()
    assert config["name"] == "molgraph"
    restored = MolGraphDomain.from_config(config)
    assert restored.graph_spec() == domain.graph_spec()
    assert (restored.kekulize, restored.fragments) == (False, "keep")
    mol = domain.parse("CC(=O)[O-].CN")
    assert torch.equal(restored.to_graph(mol).node_type, domain.to_graph(mol).node_type)
    assert MolGraphDomain.from_config(MolGraphDomain().to_config()).node_types is None


@needs_mirror
def test_qm9_loads_and_round_trips():
    domain = MolGraphDomain()
    loaded = load_texts("qm9", domain, limit=50)
    assert len(loaded.texts) == 50
    mols = [domain.parse(t) for t in loaded.texts]
    domain.fit_graph(mols)
    for mol in mols:
        back = domain.from_graph(domain.to_graph(mol))
        assert back is not None and Chem.MolToSmiles(back) == Chem.MolToSmiles(mol, isomericSmiles=False)
