"""Crystal graph convolutional network (CGCNN) building blocks.

The network of Xie & Grossman (PRL 120, 145301, 2018), written from the
paper, and the periodic graphs it reads:

* :func:`periodic_distances`: edge lengths of a periodic graph (neighbour
  images across cell boundaries);
* :class:`PackedCrystalGraphs` / :func:`pack_crystal_graphs`: many graphs as
  flat tensors, sliced into a :class:`CrystalGraphBatch` per mini-batch;
* :class:`GatedCrystalConv`: one gated convolution
  ``v_i <- softplus(v_i + BN(sum_j sigmoid(z_ij W_f) * softplus(z_ij W_s)))``
  with ``z_ij = [v_i, v_j, e_ij]``;
* :class:`CGCNN`: atom embedding (plus an optional fixed element descriptor
  table), Gaussian distance expansion, gated convolutions, mean or sum
  pooling and an MLP head.

Only distances and element identities enter, so outputs are invariant to
rotations, translations, the choice of unit cell and the order of sites.
The learned predictor around it is :class:`molgen.predictors.crystals.CGCNNPredictor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import scatter

__all__ = [
    "CGCNN",
    "MAX_Z",
    "NORMS",
    "POOLINGS",
    "CrystalGraphBatch",
    "GatedCrystalConv",
    "PackedCrystalGraphs",
    "pack_crystal_graphs",
    "periodic_distances",
]

#: Largest atomic number the embedding covers.
MAX_Z = 118
NORMS = ("batch", "layer", "none")
POOLINGS = ("mean", "sum")


# ----------------------------------------------------------------------------- graphs


def periodic_distances(
    frac_coords: torch.Tensor, lattice: torch.Tensor, edge_index: torch.Tensor, edge_image: torch.Tensor
) -> torch.Tensor:
    """Interatomic distances of a periodic graph's edges.

    Args:
        frac_coords: Fractional coordinates ``[N, 3]``.
        lattice: Lattice vectors as rows, ``[3, 3]`` or ``[1, 3, 3]`` (A).
        edge_index: ``[2, E]``, row 0 the neighbour, row 1 the centre.
        edge_image: Integer cell offset of the neighbour, ``[E, 3]``.

    Returns:
        Distances ``[E]`` (A), in float64 (periodic differences of nearly
        equal coordinates lose digits in float32).
    """
    frac = frac_coords.double()
    matrix = lattice.double().reshape(3, 3)
    src, dst = edge_index
    delta = frac[src] + edge_image.double() - frac[dst]
    return (delta @ matrix).norm(dim=1)


class CrystalGraphBatch(NamedTuple):
    """Network input: several crystal graphs in one disconnected graph.

    Attributes:
        atomic_numbers: ``[N]`` (long).
        edge_index: ``[2, E]`` into the batch's atoms (row 0 neighbour, row 1 centre).
        edge_distance: ``[E]`` (A, float32).
        batch: Graph of each atom, ``[N]``.
        num_graphs: Number of crystals.
    """

    atomic_numbers: torch.Tensor
    edge_index: torch.Tensor
    edge_distance: torch.Tensor
    batch: torch.Tensor
    num_graphs: int


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + c)`` for every (start, count), vectorised."""
    group = torch.repeat_interleave(torch.arange(len(counts)), counts)
    offsets = torch.cumsum(counts, 0) - counts
    return starts[group] + torch.arange(int(counts.sum())) - offsets[group]


@dataclass
class PackedCrystalGraphs:
    """Many crystal graphs stored as flat tensors, for fast mini-batching.

    Collating PyG ``Data`` objects one by one costs more than a CGCNN step on
    these small graphs; slicing flat tensors with precomputed offsets does
    not.

    Attributes:
        atomic_numbers: All atoms, ``[N]``.
        node_ptr: Atoms of graph ``g`` are ``node_ptr[g]:node_ptr[g + 1]``.
        edge_index: ``[2, E]``, indices local to each graph.
        edge_distance: ``[E]`` (A).
        edge_ptr: Edges of graph ``g`` are ``edge_ptr[g]:edge_ptr[g + 1]``.
    """

    atomic_numbers: torch.Tensor
    node_ptr: torch.Tensor
    edge_index: torch.Tensor
    edge_distance: torch.Tensor
    edge_ptr: torch.Tensor

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    def select(self, rows: Sequence[int], device: str | torch.device = "cpu") -> CrystalGraphBatch:
        """The batch of graphs ``rows``.

        Args:
            rows: Graph indices (any order, repeats allowed).
            device: Where to put the batch.

        Returns:
            A :class:`CrystalGraphBatch` with graphs in the order of ``rows``.
        """
        rows_t = torch.as_tensor(list(rows), dtype=torch.long)
        n_nodes = self.node_ptr[rows_t + 1] - self.node_ptr[rows_t]
        n_edges = self.edge_ptr[rows_t + 1] - self.edge_ptr[rows_t]
        nodes = _ranges(self.node_ptr[rows_t], n_nodes)
        edges = _ranges(self.edge_ptr[rows_t], n_edges)
        graph_ids = torch.arange(len(rows_t))
        new_start = torch.cumsum(n_nodes, 0) - n_nodes
        edge_graph = torch.repeat_interleave(graph_ids, n_edges)
        return CrystalGraphBatch(
            atomic_numbers=self.atomic_numbers[nodes].to(device),
            edge_index=(self.edge_index[:, edges] + new_start[edge_graph]).to(device),
            edge_distance=self.edge_distance[edges].to(device),
            batch=torch.repeat_interleave(graph_ids, n_nodes).to(device),
            num_graphs=len(rows_t),
        )


def pack_crystal_graphs(graphs: Sequence[Any]) -> PackedCrystalGraphs:
    """Pack periodic graphs (such as those of the crystal domain's ``structure_to_graph``).

    Args:
        graphs: PyG ``Data`` with ``atomic_numbers`` and ``edge_index``, and
            either ``edge_distance`` or ``frac_coords``, ``lattice`` and
            ``edge_image`` (distances are then computed with
            :func:`periodic_distances`).

    Returns:
        The packed graphs.
    """
    numbers, edges, distances, n_nodes, n_edges = [], [], [], [0], [0]
    for data in graphs:
        distance = getattr(data, "edge_distance", None)
        if distance is None:
            distance = periodic_distances(data.frac_coords, data.lattice, data.edge_index, data.edge_image)
        numbers.append(data.atomic_numbers.long())
        edges.append(data.edge_index.long().reshape(2, -1))
        distances.append(distance.float().reshape(-1))
        n_nodes.append(int(data.atomic_numbers.shape[0]))
        n_edges.append(int(edges[-1].shape[1]))
    if not numbers:
        empty = torch.zeros(0, dtype=torch.long)
        return PackedCrystalGraphs(empty, torch.zeros(1, dtype=torch.long), empty.reshape(2, 0), torch.zeros(0), torch.zeros(1, dtype=torch.long))
    return PackedCrystalGraphs(
        atomic_numbers=torch.cat(numbers),
        node_ptr=torch.cumsum(torch.tensor(n_nodes), 0),
        edge_index=torch.cat(edges, dim=1),
        edge_distance=torch.cat(distances),
        edge_ptr=torch.cumsum(torch.tensor(n_edges), 0),
    )


# ----------------------------------------------------------------------------- network


class _RobustBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` that uses its running statistics when a training batch
    has fewer than two rows (a last mini-batch holding one single-atom cell
    would otherwise raise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return _RobustBatchNorm(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class GatedCrystalConv(nn.Module):
    """One CGCNN convolution (Xie & Grossman 2018, eq. 5).

    For centre ``i`` and neighbour ``j`` with ``z_ij = [v_i, v_j, e_ij]``::

        v_i <- softplus(v_i + N(sum_j sigmoid(N(z_ij W_f)) * softplus(N(z_ij W_s))))

    The sigmoid "gate" learns how much each neighbour matters (near
    neighbours more than far ones, without a hand-set cut-off function) and
    the softplus "core" what it contributes. ``N`` is the normalisation.

    Args:
        dim: Atom state width.
        edge_dim: Edge feature width.
        norm: ``"batch"``, ``"layer"`` or ``"none"``.
    """

    def __init__(self, dim: int, edge_dim: int, norm: str):
        super().__init__()
        # ``z_ij W`` with ``W = [W_centre; W_neighbour; W_edge]`` (gate and core
        # stacked) is computed as ``(h W_centre)[i] + (h W_neighbour)[j] + e_ij W_edge``:
        # the same linear map, but the atom parts are multiplied once per atom
        # instead of once per edge (about 12 edges per atom).
        self.centre = nn.Linear(dim, 2 * dim)
        self.neighbour = nn.Linear(dim, 2 * dim, bias=False)
        self.edge = nn.Linear(edge_dim, 2 * dim, bias=False)
        self.norm_edges = _norm(norm, 2 * dim)
        self.norm_nodes = _norm(norm, dim)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """New atom states ``[N, dim]`` from states ``h`` and edges ``(neighbour, centre)``."""
        src, dst = edge_index
        z = self.norm_edges(self.centre(h)[dst] + self.neighbour(h)[src] + self.edge(edge_attr))
        gate, core = z.chunk(2, dim=1)
        messages = torch.sigmoid(gate) * F.softplus(core)
        summed = scatter(messages, dst, dim=0, dim_size=h.shape[0], reduce="sum")
        return F.softplus(h + self.norm_nodes(summed))


class CGCNN(nn.Module):
    """Crystal graph convolutional network with an MLP head.

    Args:
        n_tasks: Outputs.
        atom_dim: Atom state width.
        n_conv: Gated convolutions.
        head_hidden: Width of the head's hidden layers.
        head_layers: Hidden layers of the head (softplus + dropout each).
        n_gaussians: Gaussians of the distance expansion, centred evenly on
            ``[0, cutoff]`` with a width of one spacing.
        cutoff: Largest distance (A) the expansion resolves.
        dropout: Dropout probability in the head.
        norm: ``"batch"`` (CGCNN's choice), ``"layer"`` or ``"none"``.
        pooling: ``"mean"`` (intensive targets, such as energies per atom)
            or ``"sum"`` (extensive ones, per cell).
        element_table: Fixed per-element descriptors ``[MAX_Z + 1, d]``
            (row = atomic number) whose linear projection is added to the
            learned embedding, or None for the embedding alone. It is kept as
            a buffer, so it is saved with the weights.
    """

    def __init__(
        self,
        n_tasks: int,
        atom_dim: int = 64,
        n_conv: int = 3,
        head_hidden: int = 128,
        head_layers: int = 1,
        n_gaussians: int = 41,
        cutoff: float = 6.0,
        dropout: float = 0.0,
        norm: str = "batch",
        pooling: str = "mean",
        element_table: torch.Tensor | None = None,
    ):
        super().__init__()
        self.pooling = pooling
        self.embedding = nn.Embedding(MAX_Z + 1, atom_dim)
        if element_table is not None:
            self.register_buffer("element_table", element_table.float())
            self.element_projection = nn.Linear(element_table.shape[1], atom_dim)
        else:
            self.element_table = None
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_gaussians))
        self.gamma = 1.0 / (cutoff / max(n_gaussians - 1, 1)) ** 2
        self.convs = nn.ModuleList(GatedCrystalConv(atom_dim, n_gaussians, norm) for _ in range(n_conv))
        layers: list[nn.Module] = []
        width = atom_dim
        for _ in range(head_layers):
            layers += [nn.Linear(width, head_hidden), nn.Softplus(), nn.Dropout(dropout)]
            width = head_hidden
        layers.append(nn.Linear(width, n_tasks))
        self.head = nn.Sequential(*layers)

    def expand_distances(self, distance: torch.Tensor) -> torch.Tensor:
        """Gaussian expansion ``exp(-gamma (d - mu_k)^2)``, ``[E] -> [E, n_gaussians]``."""
        return torch.exp(-self.gamma * (distance.unsqueeze(1) - self.centres) ** 2)

    def encode(self, batch: CrystalGraphBatch) -> torch.Tensor:
        """Crystal embeddings ``[num_graphs, atom_dim]`` (after pooling)."""
        h = self.embedding(batch.atomic_numbers)
        if self.element_table is not None:
            h = h + self.element_projection(self.element_table[batch.atomic_numbers])
        edge_attr = self.expand_distances(batch.edge_distance)
        for conv in self.convs:
            h = conv(h, batch.edge_index, edge_attr)
        return scatter(h, batch.batch, dim=0, dim_size=batch.num_graphs, reduce=self.pooling)

    def forward(self, batch: CrystalGraphBatch) -> torch.Tensor:
        """Raw outputs ``[num_graphs, n_tasks]``."""
        return self.head(self.encode(batch))
