"""RDKit molecules -> ``torch_geometric`` graphs with chemprop-style features.

Atoms carry one-hot encodings of element, degree, formal charge, chirality
tag, total hydrogen count and hybridisation (each with a trailing "other"
slot, so an unusual atom never breaks featurisation), an aromatic flag and
mass / 100. Bonds carry one-hot bond type, conjugation, ring membership and
stereo.

Every bond becomes two directed edges stored next to each other: edge ``2i``
goes ``begin -> end`` and edge ``2i + 1`` goes ``end -> begin``. The reverse
of edge ``e`` is therefore ``e ^ 1``; that stays true after batching because
each graph contributes an even number of edges, which is what the directed
message passing network relies on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from rdkit import Chem
from torch_geometric.data import Batch, Data

# Elements common in drug-like and NCI-like molecules; anything else is "other".
ATOM_ELEMENTS: tuple[int, ...] = (1, 5, 6, 7, 8, 9, 11, 14, 15, 16, 17, 19, 35, 53)
ATOM_DEGREES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
FORMAL_CHARGES: tuple[int, ...] = (-2, -1, 0, 1, 2)
CHIRAL_TAGS: tuple[Chem.ChiralType, ...] = (
    Chem.ChiralType.CHI_UNSPECIFIED,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW,
    Chem.ChiralType.CHI_OTHER,
)
TOTAL_HS: tuple[int, ...] = (0, 1, 2, 3, 4)
HYBRIDISATIONS: tuple[Chem.HybridizationType, ...] = (
    Chem.HybridizationType.SP,
    Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3,
    Chem.HybridizationType.SP3D,
    Chem.HybridizationType.SP3D2,
)
BOND_TYPES: tuple[Chem.BondType, ...] = (
    Chem.BondType.SINGLE,
    Chem.BondType.DOUBLE,
    Chem.BondType.TRIPLE,
    Chem.BondType.AROMATIC,
)
BOND_STEREO: tuple[Chem.BondStereo, ...] = (
    Chem.BondStereo.STEREONONE,
    Chem.BondStereo.STEREOANY,
    Chem.BondStereo.STEREOZ,
    Chem.BondStereo.STEREOE,
    Chem.BondStereo.STEREOCIS,
    Chem.BondStereo.STEREOTRANS,
)

# One-hot vocabularies of the atom features, in column order; each gets +1 "other" slot.
_ATOM_VOCABS: tuple[tuple, ...] = (ATOM_ELEMENTS, ATOM_DEGREES, FORMAL_CHARGES, CHIRAL_TAGS, TOTAL_HS, HYBRIDISATIONS)
_ATOM_LOOKUPS = tuple({value: i for i, value in enumerate(vocab)} for vocab in _ATOM_VOCABS)
_ATOM_SIZES = np.array([len(v) + 1 for v in _ATOM_VOCABS])
_ATOM_OFFSETS = np.concatenate([[0], np.cumsum(_ATOM_SIZES)[:-1]])
_BOND_TYPE_INDEX = {value: i for i, value in enumerate(BOND_TYPES)}
_BOND_STEREO_INDEX = {value: i for i, value in enumerate(BOND_STEREO)}

#: Width of the atom feature vector (one-hots + aromatic flag + mass / 100).
ATOM_FEATURE_DIM: int = int(_ATOM_SIZES.sum()) + 2
#: Width of the bond feature vector (type + conjugated + in ring + stereo).
BOND_FEATURE_DIM: int = len(BOND_TYPES) + 2 + len(BOND_STEREO)


def atom_features(mol: Chem.Mol) -> np.ndarray:
    """Atom feature matrix of a molecule.

    Args:
        mol: An RDKit molecule (hydrogens implicit or explicit).

    Returns:
        ``float32`` array ``[n_atoms, ATOM_FEATURE_DIM]``.
    """
    atoms = list(mol.GetAtoms())
    raw = [
        (a.GetAtomicNum(), a.GetDegree(), a.GetFormalCharge(), a.GetChiralTag(), a.GetTotalNumHs(), a.GetHybridization())
        for a in atoms
    ]
    out = np.zeros((len(atoms), ATOM_FEATURE_DIM), dtype=np.float32)
    if not atoms:
        return out
    # Category index per (atom, field); unknown values fall into the field's last ("other") slot.
    codes = np.array(
        [[lookup.get(value, len(lookup)) for lookup, value in zip(_ATOM_LOOKUPS, row)] for row in raw], dtype=np.int64
    )
    rows = np.repeat(np.arange(len(atoms)), len(_ATOM_VOCABS))
    out[rows, (codes + _ATOM_OFFSETS).ravel()] = 1.0
    out[:, -2] = [a.GetIsAromatic() for a in atoms]
    # Mass is scaled to roughly unit range like the other features (chemprop does the same).
    out[:, -1] = [a.GetMass() / 100.0 for a in atoms]
    return out


def bond_features(mol: Chem.Mol) -> np.ndarray:
    """Bond feature matrix of a molecule, one row per (undirected) bond.

    Args:
        mol: An RDKit molecule.

    Returns:
        ``float32`` array ``[n_bonds, BOND_FEATURE_DIM]``; a bond type or
        stereo outside the known lists leaves its one-hot block all zero.
    """
    bonds = list(mol.GetBonds())
    out = np.zeros((len(bonds), BOND_FEATURE_DIM), dtype=np.float32)
    if not bonds:
        return out
    rows = np.arange(len(bonds))
    n_types = len(BOND_TYPES)
    types = np.array([_BOND_TYPE_INDEX.get(b.GetBondType(), -1) for b in bonds])
    known = types >= 0
    out[rows[known], types[known]] = 1.0
    out[:, n_types] = [b.GetIsConjugated() for b in bonds]
    out[:, n_types + 1] = [b.IsInRing() for b in bonds]
    stereo = np.array([_BOND_STEREO_INDEX.get(b.GetStereo(), -1) for b in bonds])
    known = stereo >= 0
    out[rows[known], n_types + 2 + stereo[known]] = 1.0
    return out


def mol_to_graph(mol: Chem.Mol) -> Data:
    """Featurise one molecule as a ``torch_geometric`` graph.

    Args:
        mol: An RDKit molecule; molecules without bonds (``C``, ``[Na+]``)
            give graphs with zero edges.

    Returns:
        ``Data`` with ``x`` ``[n_atoms, ATOM_FEATURE_DIM]``, ``edge_index``
        ``[2, 2 * n_bonds]`` (both directions, reverse of edge ``e`` is
        ``e ^ 1``) and ``edge_attr`` ``[2 * n_bonds, BOND_FEATURE_DIM]``.
    """
    if mol is None:
        raise ValueError("mol_to_graph got None instead of an RDKit molecule")
    x = torch.from_numpy(atom_features(mol))
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    # Interleave the two directions so that edges 2i and 2i+1 are each other's reverse.
    edge_index = torch.from_numpy(np.stack([bonds, bonds[:, ::-1]], axis=1).reshape(-1, 2).T.copy())
    edge_attr = torch.from_numpy(np.repeat(bond_features(mol), 2, axis=0))
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, num_nodes=x.shape[0])


def mols_to_batch(mols: Sequence[Chem.Mol] | Sequence[Data]) -> Batch:
    """Featurise and batch molecules (or batch already featurised graphs).

    Args:
        mols: RDKit molecules, or ``Data`` objects from :func:`mol_to_graph`.

    Returns:
        A ``torch_geometric.data.Batch`` whose ``batch`` vector maps atoms to
        molecules; ``num_graphs == len(mols)``.
    """
    graphs = [m if isinstance(m, Data) else mol_to_graph(m) for m in mols]
    return Batch.from_data_list(graphs)
