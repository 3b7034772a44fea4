"""Multi-head self-attention on torch's fused ``scaled_dot_product_attention``
with rotary positions and a preallocated key/value cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) applied to queries and keys.

    Args:
        head_dim: Per-head dimension (even).
        base: Frequency base.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError("rotary embeddings need an even head dimension")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cis: torch.Tensor | None = None

    def _table(self, length: int, device: torch.device) -> torch.Tensor:
        cis = self._cis
        if cis is None or cis.shape[0] < length or cis.device != device:
            size = max(length, 64 if cis is None else 2 * cis.shape[0])
            # Built as an ordinary tensor even under inference_mode, so a table
            # first made while sampling can later serve a training step.
            with torch.inference_mode(False):
                t = torch.arange(size, device=device, dtype=torch.float32)
                freqs = torch.outer(t, self.inv_freq.to(device))
                self._cis = torch.polar(torch.ones_like(freqs), freqs)
        return self._cis  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x`` of shape ``[B, H, L, D]`` for positions offset..offset+L-1.

        Dimension pairs (2i, 2i+1) rotate as one complex number: a single
        complex multiply instead of slicing, four products and a stack.
        """
        length = x.shape[-2]
        cis = self._table(offset + length, x.device)[offset : offset + length]
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * cis).flatten(-2).to(x.dtype)


class KVCache:
    """Preallocated keys and values for incremental decoding, one per layer.

    Args:
        n_layers: Number of attention layers.
        batch: Batch size.
        n_heads: Heads per layer.
        max_length: Longest sequence the cache holds.
        head_dim: Per-head dimension.
        device: Device of the buffers.
        dtype: Dtype of the buffers.
    """

    def __init__(self, n_layers: int, batch: int, n_heads: int, max_length: int, head_dim: int, device, dtype):
        shape = (batch, n_heads, max_length, head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.length = 0  # positions filled so far

    def select(self, rows: torch.Tensor) -> None:
        """Keep only batch ``rows`` (drop finished sequences), copying just the
        filled prefix."""
        n = self.length
        for store in (self.keys, self.values):
            for i, buf in enumerate(store):
                new = torch.empty((rows.numel(), *buf.shape[1:]), device=buf.device, dtype=buf.dtype)
                new[:, :, :n] = buf[rows, :, :n]
                store[i] = new


class SelfAttention(nn.Module):
    """Multi-head self-attention (causal or bidirectional).

    Args:
        d_model: Model width.
        n_heads: Number of heads.
        dropout: Attention dropout during training.
        causal: Mask future positions.
        rotary: Apply rotary embeddings to queries and keys.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, causal: bool = True, rotary: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.causal = causal
        self.rotary = RotaryEmbedding(self.head_dim) if rotary else None

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """Attend over ``x`` ``[B, L, d_model]``.

        Args:
            x: Inputs.
            key_padding_mask: ``[B, L]`` True on real tokens (bidirectional use;
                causal attention with right padding needs none).
            cache: Key/value cache; when given, ``x`` holds the positions
                following ``cache.length`` and keys/values are appended.
            layer: Index of this layer in ``cache``.

        Returns:
            ``[B, L, d_model]``.
        """
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        offset = cache.length if cache is not None else 0
        if self.rotary is not None:
            q = self.rotary(q, offset)
            k = self.rotary(k, offset)
        mask = None
        is_causal = self.causal
        if cache is not None:
            cache.keys[layer][:, :, offset : offset + length] = k
            cache.values[layer][:, :, offset : offset + length] = v
            k = cache.keys[layer][:, :, : offset + length]
            v = cache.values[layer][:, :, : offset + length]
            # A single new query may see every cached key; a multi-token
            # prefill from an empty cache is ordinary causal attention.
            is_causal = self.causal and length > 1
            if is_causal and offset > 0:
                raise ValueError("multi-token steps are only supported from an empty cache")
        elif key_padding_mask is not None:
            mask = key_padding_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=is_causal and mask is None
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, width))
