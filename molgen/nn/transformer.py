"""Pre-norm transformer blocks and stacks."""

from __future__ import annotations

import torch
from torch import nn

from molgen.nn.attention import KVCache, SelfAttention


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    Args:
        d_model: Width.
        n_heads: Attention heads.
        d_ff: Hidden width of the MLP.
        dropout: Dropout on attention and residual branches.
        causal: Causal attention.
        rotary: Rotary positions.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, causal: bool = True, rotary: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout, causal=causal, rotary=rotary)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_padding_mask=None, cache: KVCache | None = None, layer: int = 0):
        """Apply the block to ``x`` ``[B, L, d_model]``."""
        x = x + self.drop(self.attn(self.norm1(x), key_padding_mask, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerStack(nn.Module):
    """A stack of :class:`TransformerBlock` with a final LayerNorm.

    Args:
        n_layers: Number of blocks.
        d_model: Width.
        n_heads: Heads.
        d_ff: MLP width.
        dropout: Dropout.
        causal: Causal attention.
        rotary: Rotary positions.
    """

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, causal: bool = True, rotary: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, dropout, causal, rotary) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads

    def forward(self, x: torch.Tensor, key_padding_mask=None, cache: KVCache | None = None) -> torch.Tensor:
        """Run every block; advances ``cache.length`` when a cache is given."""
        for i, block in enumerate(self.blocks):
            x = block(x, key_padding_mask, cache, i)
        if cache is not None:
            cache.length += x.shape[1]
        return self.norm(x)

    def new_cache(self, batch: int, max_length: int, device, dtype) -> KVCache:
        """An empty cache sized for this stack."""
        return KVCache(len(self.blocks), batch, self.n_heads, max_length, self.head_dim, device, dtype)


def init_transformer_weights(module: nn.Module) -> None:
    """GPT-style initialisation: N(0, 0.02) weights, zero biases (use with ``Module.apply``)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
