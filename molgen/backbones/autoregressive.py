"""Decoder-only transformer over the tokens view, trained by next-token
cross-entropy, sampled with a key/value cache."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from molgen.backbones.base import TokenGenerator, TransformerHParams
from molgen.core.registry import BACKBONES
from molgen.core.constraint import DecodingConstraint
from molgen.core.seeding import resolve_generator
from molgen.nn.decoding import decode_batch, grammar_masks
from molgen.nn.transformer import TransformerStack, init_transformer_weights


class AutoregressiveConfig(TransformerHParams):
    """Hyper-parameters of :class:`AutoregressiveTransformer`."""

    positions: Literal["rotary", "learned"] = "rotary"
    tie_embeddings: bool = True


class AutoregressiveTransformer(TokenGenerator):
    """GPT-style decoder over domain tokens.

    ``log_likelihood`` is the exact sequence log-probability (BOS excluded,
    EOS included), as reinforcement learning on sequences needs.
    """

    name = "autoregressive"
    config_cls = AutoregressiveConfig
    exact_likelihood = True

    def __init__(self, domain, config: AutoregressiveConfig):
        super().__init__(domain, config)
        self._bind_vocabulary(banned=("pad", "bos", "mask", "unk"))
        c = config
        self.embed = nn.Embedding(self.vocab_size, c.d_model)
        self.pos_embed = nn.Embedding(c.max_length, c.d_model) if c.positions == "learned" else None
        self.stack = TransformerStack(
            c.n_layers, c.d_model, c.n_heads, c.d_ff or 4 * c.d_model, c.dropout, causal=True, rotary=c.positions == "rotary"
        )
        self.head = nn.Linear(c.d_model, self.vocab_size, bias=False)
        if c.tie_embeddings:
            self.head.weight = self.embed.weight
        self.apply(init_transformer_weights)

    # -- forward ----------------------------------------------------------
    def forward(self, tokens: torch.Tensor, cache=None) -> torch.Tensor:
        """Logits ``[B, L, V]`` for ``tokens`` ``[B, L]``.

        With a cache, ``tokens`` are the positions after ``cache.length``.
        """
        x = self.embed(tokens)
        if self.pos_embed is not None:
            start = cache.length if cache is not None else 0
            if start + tokens.shape[1] > self.config.max_length:
                raise ValueError(f"sequence longer than max_length={self.config.max_length}")
            x = x + self.pos_embed(torch.arange(start, start + tokens.shape[1], device=tokens.device))
        return self.head(self.stack(x, cache=cache))

    def _token_log_probs(self, batch: dict[str, torch.Tensor], constrained: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = batch["tokens"]
        logits = self(tokens[:, :-1])
        targets = tokens[:, 1:]
        mask = batch["mask"][:, 1:]
        if constrained:  # renormalise over what the grammar allows, as constrained sampling does
            table, _ = self.grammar_tensors(True, None, 1.0)
            logits = logits.masked_fill(~grammar_masks(table, targets), float("-inf"))
        log_probs = -F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
        return log_probs, mask

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean next-token cross-entropy over real (unpadded) tokens.

        Args:
            batch: ``{"tokens": [B, L], "mask": [B, L]}`` starting with BOS.

        Returns:
            ``{"loss": scalar, "tokens": number of predicted tokens}``.
        """
        log_probs, mask = self._token_log_probs(batch)
        count = mask.sum()
        return {"loss": -(log_probs * mask).sum() / count.clamp(min=1), "tokens": count}

    def log_likelihood(self, batch: dict[str, torch.Tensor], constrained: bool = False) -> torch.Tensor:
        """Exact ``log p(sequence)`` per example, ``[B]``.

        Args:
            batch: ``{"tokens", "mask"}`` starting with BOS.
            constrained: The likelihood under the domain's token grammar (of
                ``sample_ids(constrained=True)``): each step renormalised over
                the allowed tokens.
        """
        log_probs, mask = self._token_log_probs(batch, constrained)
        return (log_probs * mask).sum(-1)

    # -- sampling --------------------------------------------------------
    @torch.inference_mode()
    def sample_ids(
        self,
        n: int,
        *,
        batch_size: int = 512,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        use_cache: bool = True,
        constrained: bool | None = None,
        field_temperature: dict[str, float] | None = None,
        semantic: bool | None = None,
    ) -> list[list[int]]:
        """Draw ``n`` token-id sequences (without BOS; EOS dropped).

        Finished sequences leave the batch, so the work per step shrinks as
        molecules complete.

        Args:
            n: Number of sequences.
            batch_size: Sequences decoded together.
            temperature: Softmax temperature (0: greedy).
            top_k: Keep only the k most likely tokens.
            top_p: Nucleus sampling threshold.
            max_length: Longest sequence incl. BOS/EOS (default: the model's).
            generator: Randomness; must live on the model's device.
            seed: Seed for a new generator when ``generator`` is None.
            use_cache: Use the key/value cache (False recomputes the prefix
                each step; same distribution, for checks and benchmarks).
            constrained: Follow the domain's token grammar
                (:meth:`~molgen.domains.base.Domain.token_grammar`), so that
                every finished sequence is well formed; the model's
                probabilities are renormalised over the allowed tokens.
                None (default): when the domain has a grammar (crystals).
            field_temperature: With ``constrained``, temperatures for named
                fields of the grammar (crystals: ``length``, ``angle``,
                ``element``, ``coordinate``, ``end``) in place of
                ``temperature``.
            semantic: With ``constrained``, also enforce the domain's
                decoding constraint (:meth:`~molgen.domains.base.Domain.decoding_constraint`;
                crystals: no atom within the validity distance of an
                earlier one). ``log_likelihood`` does not renormalise for it.
                None (default): when constrained and the domain has one.

        Returns:
            ``n`` id lists in sampling order; a sequence that hit
            ``max_length`` without EOS is returned truncated.
        """
        was_training = self.training
        self.eval()
        device = self.device
        gen = resolve_generator(generator, seed, device)
        limit = min(max_length or self.config.max_length, self.config.max_length)
        constrained, semantic = self.grammar_flags(constrained, semantic)
        grammar = self.grammar_tensors(constrained, field_temperature, temperature)
        constraint = self.decoding_constraint(semantic, constrained)
        results: list[list[int]] = []
        for start in range(0, n, batch_size):
            results.extend(
                self._sample_chunk(min(batch_size, n - start), limit, gen, temperature, top_k, top_p, use_cache, grammar, constraint)
            )
        self.train(was_training)
        return results

    @torch.inference_mode()
    def sample_ids_under(
        self,
        n: int,
        constraint: DecodingConstraint,
        *,
        batch_size: int = 512,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> list[list[int]]:
        """Draw ``n`` sequences under ``constraint`` (e.g. a SMILES template:
        forced tokens and spans the model writes), each step renormalised
        over what it allows.

        Args:
            n: Number of sequences.
            constraint: The decoding constraint, reset per batch.
            batch_size, temperature, top_k, top_p, max_length, generator, seed:
                As in :meth:`sample_ids`.

        Returns:
            Id lists without BOS and EOS.
        """
        was_training = self.training
        self.eval()
        gen = resolve_generator(generator, seed, self.device)
        limit = min(max_length or self.config.max_length, self.config.max_length)
        results: list[list[int]] = []
        for start in range(0, n, batch_size):
            results.extend(self._sample_chunk(min(batch_size, n - start), limit, gen, temperature, top_k, top_p, True,
                                              constraint=constraint))
        self.train(was_training)
        return results

    def _sample_chunk(
        self, batch, limit, gen, temperature, top_k, top_p, use_cache, grammar=(None, None), constraint=None
    ) -> list[list[int]]:
        device = self.device
        cache = self.stack.new_cache(batch, limit, device, next(self.parameters()).dtype) if use_cache else None

        def next_logits(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return self(tokens, cache=cache)[:, -1]

        return decode_batch(
            next_logits, batch, limit, bos_id=self.bos_id, eos_id=self.eos_id, pad_id=self.pad_id, banned=self.banned,
            generator=gen, device=device, cache=cache, temperature=temperature, top_k=top_k, top_p=top_p,
            grammar=grammar[0], state_temperature=grammar[1], constraint=constraint,
        )


BACKBONES.register("autoregressive", AutoregressiveTransformer)
