"""Drawing tokens from logits: temperature, top-k and nucleus (top-p)."""

from __future__ import annotations

import torch


def tempered_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax of ``logits / temperature`` over the last axis.

    Args:
        logits: ``[..., K]`` logits.
        temperature: Above 1 flattens, below 1 sharpens; 0 puts all mass on
            the arg-max.

    Returns:
        ``[..., K]`` probabilities.
    """
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return (logits / temperature).softmax(-1)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus to -inf.

    Args:
        logits: ``[B, V]``.
        top_k: Keep the k largest logits per row (None or 0: all).
        top_p: Keep the smallest set whose probability reaches ``top_p``
            (None or 1.0: all).

    Returns:
        Filtered logits (a new tensor).
    """
    logits = logits.clone()
    if top_k:
        k = min(int(top_k), logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1, None]
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # Remove a token when the mass before it already reaches top_p, so
        # the most likely token always survives.
        remove_sorted = probs.cumsum(-1) - probs >= top_p
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        logits[remove] = float("-inf")
    return logits


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Draw one token per row.

    Args:
        logits: ``[B, V]`` float logits.
        generator: Source of randomness (on the logits' device).
        temperature: Softmax temperature; 0 picks the arg-max.
        top_k: See :func:`filter_logits`.
        top_p: See :func:`filter_logits`.

    Returns:
        ``[B]`` token ids.
    """
    if temperature <= 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
