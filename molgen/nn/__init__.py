"""Neural building blocks shared by backbones."""

from molgen.nn.attention import KVCache, RotaryEmbedding, SelfAttention
from molgen.nn.transformer import TransformerBlock, TransformerStack

__all__ = ["KVCache", "RotaryEmbedding", "SelfAttention", "TransformerBlock", "TransformerStack"]
