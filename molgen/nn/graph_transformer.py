"""A graph transformer over dense node, edge and global features: attention
with a per-head bias from edge features and edge-dependent values, FiLM conditioning of nodes on a
global vector (time, condition, lattice), and edge and global updates from
the nodes, in the spirit of DiGress's denoiser (Vignac et al. 2023)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``[B, dim]`` of times ``t`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h [B, N, D]`` over real nodes (``mask [B, N]``)."""
    weights = mask.float().unsqueeze(-1)
    return (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class GraphTransformerLayer(nn.Module):
    """One layer updating nodes ``h [B, N, dn]``, edges ``e [B, N, N, de]``
    and globals ``g [B, dg]``.

    Args:
        d_node: Node width.
        d_edge: Edge width.
        d_global: Global width.
        n_heads: Attention heads.
        dropout: Dropout on residual branches.
    """

    def __init__(self, d_node: int, d_edge: int, d_global: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_node % n_heads:
            raise ValueError(f"d_node ({d_node}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.norm_node = nn.LayerNorm(d_node)
        self.film = nn.Linear(d_global, 2 * d_node)
        self.qkv = nn.Linear(d_node, 3 * d_node)
        self.out = nn.Linear(d_node, d_node)
        self.norm_edge = nn.LayerNorm(d_edge)
        self.edge_bias = nn.Linear(d_edge, n_heads)
        self.edge_value = nn.Linear(d_edge, d_node)
        self.norm_mlp = nn.LayerNorm(d_node)
        self.mlp = nn.Sequential(nn.Linear(d_node, 4 * d_node), nn.GELU(), nn.Linear(4 * d_node, d_node))
        self.edge_src = nn.Linear(d_node, d_edge)
        self.edge_dst = nn.Linear(d_node, d_edge)
        self.edge_mlp = nn.Sequential(nn.GELU(), nn.Linear(d_edge, 2 * d_edge), nn.GELU(), nn.Linear(2 * d_edge, d_edge))
        self.global_mlp = nn.Sequential(nn.Linear(d_global + d_node, d_global), nn.GELU(), nn.Linear(d_global, d_global))
        self.drop = nn.Dropout(dropout)

    def forward(self, h, e, g, mask):
        """Apply the layer; ``mask [B, N]`` marks real nodes. Returns ``(h, e, g)``."""
        b, n, d = h.shape
        scale, shift = self.film(g).unsqueeze(1).chunk(2, -1)
        x = self.norm_node(h) * (1 + scale) + shift
        q, k, v = self.qkv(x).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        e_norm = self.norm_edge(e)
        bias = self.edge_bias(e_norm).permute(0, 3, 1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.n_heads) + bias
        weights = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)  # [B, H, N, N]
        # Values carry edge features too, so pair geometry (crystals) reaches the nodes.
        edge_v = self.edge_value(e_norm).reshape(b, n, n, self.n_heads, d // self.n_heads)
        attn = weights @ v + torch.einsum("bhij,bijhd->bhid", weights, edge_v)
        h = h + self.drop(self.out(attn.transpose(1, 2).reshape(b, n, d)))
        h = h + self.drop(self.mlp(self.norm_mlp(h)))
        pair = e_norm + self.edge_src(h).unsqueeze(2) + self.edge_dst(h).unsqueeze(1)
        e = e + self.drop(self.edge_mlp(pair))
        g = g + self.global_mlp(torch.cat([g, masked_mean(h, mask)], -1))
        return h, e, g


class GraphTransformer(nn.Module):
    """A stack of :class:`GraphTransformerLayer` with final norms."""

    def __init__(self, n_layers: int, d_node: int, d_edge: int, d_global: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(GraphTransformerLayer(d_node, d_edge, d_global, n_heads, dropout) for _ in range(n_layers))
        self.norm_node = nn.LayerNorm(d_node)
        self.norm_edge = nn.LayerNorm(d_edge)
        self.norm_global = nn.LayerNorm(d_global)

    def forward(self, h, e, g, mask):
        """Run every layer; returns normalised ``(h, e, g)``."""
        for layer in self.layers:
            h, e, g = layer(h, e, g, mask)
        return self.norm_node(h), self.norm_edge(e), self.norm_global(g)
