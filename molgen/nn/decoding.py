"""Batched left-to-right token decoding shared by the autoregressive decoders
(the plain transformer and the VAE's conditional decoder)."""

from __future__ import annotations

from typing import Callable

import torch

from molgen.core.constraint import DecodingConstraint
from molgen.nn.attention import KVCache
from molgen.nn.sampling import sample_next

# next_logits(tokens [b, l], rows [b]) -> logits [b, V] of the next position.
# With a cache, ``tokens`` holds only the newest token; without, the whole prefix.
# ``rows`` are the original batch rows of the live sequences.
NextLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Finished sequences stay in the batch (emitting ignored EOS) until the live
# fraction drops below this; then the batch and its cache are compacted.
# Compacting at every finish would copy the whole cache on almost every step.
COMPACT_BELOW = 0.75


def decode_batch(
    next_logits: NextLogits,
    batch: int,
    limit: int,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    banned: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
    cache: KVCache | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    grammar: torch.Tensor | None = None,
    state_temperature: torch.Tensor | None = None,
    constraint: DecodingConstraint | None = None,
) -> list[list[int]]:
    """Decode ``batch`` sequences until EOS or ``limit`` positions.

    Args:
        next_logits: Model step (see :data:`NextLogits`).
        batch: Number of sequences.
        limit: Longest sequence including BOS and EOS.
        bos_id, eos_id, pad_id: Special token ids.
        banned: Ids never emitted.
        generator: Randomness.
        device: Where the token tensors live.
        cache: Key/value cache filled by ``next_logits`` (None: recompute the
            prefix every step).
        temperature, top_k, top_p: See :func:`molgen.nn.sampling.sample_next`.
        grammar: Optional transition table ``[states, V]`` of a token automaton
            (:meth:`molgen.core.grammar.TokenGrammar.compile`): every row
            starts in state 0 and may only emit tokens whose entry is >= 0, so
            sequences that end with EOS are in the grammar's language.
        state_temperature: Optional ``[states]`` temperatures that replace
            ``temperature`` per grammar state (needs ``grammar``; e.g. sharper
            coordinates, free lattice and elements).
        constraint: Optional stateful filter consulted at every step (a
            domain rule the grammar cannot express); it is reset here.

    Returns:
        One id list per sequence (BOS and EOS dropped); a sequence that hit
        ``limit`` without EOS is returned truncated.
    """
    out = torch.full((batch, limit - 1), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((batch,), limit - 1, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device)
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    prefix = torch.full((batch, 1), bos_id, dtype=torch.long, device=device)
    step_input = prefix
    if state_temperature is not None and grammar is None:
        raise ValueError("state_temperature needs a grammar")
    state = None if grammar is None else torch.zeros(batch, dtype=torch.long, device=device)
    if constraint is not None:
        constraint.reset(batch, limit - 1)
    for t in range(limit - 1):
        logits = next_logits(step_input, rows)
        logits[:, banned] = float("-inf")
        if state is not None:
            logits = logits.masked_fill(grammar[state] < 0, float("-inf"))
        if constraint is not None:
            live_rows = rows.cpu().numpy()
            allowed = constraint.allowed(live_rows)
            if allowed is not None:
                logits = logits.masked_fill(~torch.from_numpy(allowed).to(device), float("-inf"))
        if state_temperature is not None:  # per-row temperature; sample_next then leaves the scale alone
            logits = logits.float() / state_temperature[state].clamp(min=1e-6)[:, None]
            nxt = sample_next(logits, generator, 1.0, top_k, top_p)
        else:
            nxt = sample_next(logits, generator, temperature, top_k, top_p)
        nxt = torch.where(alive, nxt, eos_id)
        if constraint is not None:
            live = alive.cpu().numpy()
            constraint.advance(live_rows[live], nxt.cpu().numpy()[live])
        if state is not None:  # finished rows keep their (accepting) state
            state = torch.where(alive, grammar[state, nxt], state)
        out[rows, t] = nxt
        finished = alive & (nxt == eos_id)
        if finished.any():
            lengths[rows[finished]] = t
            alive &= ~finished
            n_alive = int(alive.sum())
            if n_alive == 0:
                break
            if n_alive <= COMPACT_BELOW * rows.numel():
                keep = alive.nonzero().squeeze(1)
                rows, nxt, alive = rows[keep], nxt[keep], alive[keep]
                if state is not None:
                    state = state[keep]
                if cache is not None:
                    cache.select(keep)
                else:
                    prefix = prefix[keep]
        if cache is not None:
            step_input = nxt[:, None]
        else:
            prefix = torch.cat([prefix, nxt[:, None]], dim=1)
            step_input = prefix
    return [seq[:length] for seq, length in zip(out.tolist(), lengths.tolist())]


def grammar_masks(grammar: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Which tokens the automaton allows at each position of given sequences
    (teacher forcing: the likelihood that matches constrained sampling).

    Args:
        grammar: ``[states, V]`` transition table (-1: not allowed).
        targets: ``[B, T]`` next-token ids (EOS, then padding).

    Returns:
        ``[B, T, V]`` booleans. A sequence that leaves the grammar (a token
        the automaton refuses, e.g. the padding after EOS or a text from
        elsewhere) is left unmasked from that position on, so its
        likelihood stays finite.
    """
    batch, length = targets.shape
    state = torch.zeros(batch, dtype=torch.long, device=targets.device)
    off = torch.zeros(batch, dtype=torch.bool, device=targets.device)
    masks = []
    for t in range(length):
        nxt = grammar[state, targets[:, t]]
        off = off | (nxt < 0)
        masks.append((grammar[state] >= 0) | off[:, None])
        state = torch.where(nxt >= 0, nxt, state)
    return torch.stack(masks, dim=1)
