"""Dense batches of graph-view graphs (see :class:`molgen.domains.base.GraphSpec`):
small graphs (molecules of <= 50 heavy atoms, crystal cells) are cheapest as
padded ``[B, N, ...]`` tensors, which is also what a graph transformer with
edge-biased attention consumes."""

from __future__ import annotations

from typing import Sequence

import torch


def collate_dense(graphs: Sequence, has_edges: bool, periodic: bool, max_nodes: int | None = None) -> dict[str, torch.Tensor]:
    """Pad graph-view ``Data`` objects into one dense batch.

    Args:
        graphs: ``Data`` with ``node_type`` (plus ``edge_index``/``edge_type``
            or ``frac_coords``/``lattice``, and optionally ``condition [1, C]``).
        has_edges: Densify ``edge_type`` into ``[B, N, N]``.
        periodic: Carry ``frac_coords [B, N, 3]`` and ``lattice [B, 3, 3]``.
        max_nodes: Pad to this many nodes (default: the largest graph).

    Returns:
        ``node_type [B, N]`` (0 on padding), ``node_mask [B, N]`` and the
        optional entries above, plus ``condition [B, C]`` when every graph has one.
    """
    # Imported here: torch_geometric takes seconds to import, and only graph
    # backbones need it (every `molgen` command imports the backbones).
    from torch_geometric.data import Batch
    from torch_geometric.utils import to_dense_adj, to_dense_batch

    keys = ["node_type"]
    if has_edges:
        keys += ["edge_index", "edge_type"]
    if periodic:
        keys += ["frac_coords", "lattice"]
    with_condition = all(getattr(g, "condition", None) is not None for g in graphs)
    if with_condition:
        keys.append("condition")
    slim = []
    for g in graphs:
        part = type(g)(num_nodes=g.num_nodes, **{k: g[k] for k in keys})
        slim.append(part)
    batch = Batch.from_data_list(slim)
    n_max = max_nodes or int(max(g.num_nodes for g in graphs))
    node_type, mask = to_dense_batch(batch.node_type, batch.batch, fill_value=0, max_num_nodes=n_max)
    out = {"node_type": node_type, "node_mask": mask}
    if has_edges:
        if batch.edge_index.numel():
            adj = to_dense_adj(batch.edge_index, batch.batch, edge_attr=batch.edge_type, max_num_nodes=n_max, batch_size=len(graphs))
        else:
            adj = torch.zeros(len(graphs), n_max, n_max)
        out["edge_type"] = adj.long()
    if periodic:
        out["frac_coords"], _ = to_dense_batch(batch.frac_coords, batch.batch, fill_value=0.0, max_num_nodes=n_max)
        out["lattice"] = batch.lattice.reshape(-1, 3, 3)
    if with_condition:
        out["condition"] = batch.condition.reshape(len(graphs), -1).float()
    return out
