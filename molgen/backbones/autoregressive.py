"""Decoder-only transformer over the tokens view, trained by next-token
cross-entropy, sampled with a key/value cache."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from molgen.backbones.base import TokenGenerator, TransformerHParams
from molgen.backbones.sampling_options import ConditionalSamplingOptions
from molgen.core.errors import MolgenError
from molgen.core.registry import BACKBONES
from molgen.core.constraint import DecodingConstraint
from molgen.core.grammar import TokenGrammar
from molgen.core.seeding import resolve_generator
from molgen.nn.decoding import decode_batch, grammar_masks
from molgen.nn.transformer import TransformerStack, init_transformer_weights


class AutoregressiveConfig(TransformerHParams):
    """Hyper-parameters of :class:`AutoregressiveTransformer`."""

    positions: Literal["rotary", "learned"] = "rotary"
    tie_embeddings: bool = True
    conditions: list[str] = Field(default_factory=list, description="properties the model is conditioned on (e.g. "
                                  "logP, QED); empty: unconditional")
    condition_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="share of training sequences shown without "
                                     "their condition, so one model also samples unconditionally (classifier-free guidance)")


class _CachePair:
    """Two key/value caches compacted together (conditional and unconditional
    passes of classifier-free guidance)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def select(self, rows: torch.Tensor) -> None:
        self.first.select(rows)
        self.second.select(rows)


class AutoregressiveTransformer(TokenGenerator):
    """GPT-style decoder over domain tokens.

    ``log_likelihood`` is the exact sequence log-probability (BOS excluded,
    EOS included), as reinforcement learning on sequences needs.
    """

    name = "autoregressive"
    config_cls = AutoregressiveConfig
    sampling_cls = ConditionalSamplingOptions
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
        if c.conditions:
            # The condition (standardised) is added to the BOS position, so every later token attends to it.
            k = len(c.conditions)
            self.condition_proj = nn.Linear(k, c.d_model)
            self.null_condition = nn.Parameter(torch.zeros(c.d_model))
            self.register_buffer("condition_mean", torch.zeros(k))
            self.register_buffer("condition_std", torch.ones(k))
        self.apply(init_transformer_weights)

    # -- conditions ---------------------------------------------------------
    def fit_statistics(self, data) -> None:
        """Record the mean and std of the training conditions (they are standardised).

        Args:
            data: Training batches with a ``conditions`` array ``[n, k]``.
        """
        if not self.config.conditions:
            return
        values = torch.as_tensor(np.asarray(data.conditions, dtype=np.float64), dtype=torch.float32)
        self.condition_mean.copy_(torch.nanmean(values, 0))
        centred = torch.nan_to_num(values - self.condition_mean, nan=0.0)
        self.condition_std.copy_(centred.pow(2).mean(0).sqrt().clamp(min=1e-6))

    def _condition_vector(self, condition: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``[B, d]``: the projected standardised condition, the learned null
        vector for rows without one (None, or a NaN in the row)."""
        null = self.null_condition.expand(batch, -1)
        if condition is None:
            return null
        condition = condition.to(self.null_condition.device, torch.float32)
        missing = torch.isnan(condition).any(-1, keepdim=True)
        z = torch.nan_to_num((condition - self.condition_mean) / self.condition_std, nan=0.0)
        return torch.where(missing, null, self.condition_proj(z))

    # -- forward ----------------------------------------------------------
    def forward(self, tokens: torch.Tensor, cache=None, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, L, V]`` for ``tokens`` ``[B, L]``.

        With a cache, ``tokens`` are the positions after ``cache.length``.
        A conditional model adds ``condition`` ``[B, k]`` (None or NaN rows:
        unconditioned) at the first position.
        """
        x = self.embed(tokens)
        start = cache.length if cache is not None else 0
        if self.config.conditions and start == 0:
            x = torch.cat([x[:, :1] + self._condition_vector(condition, x.shape[0])[:, None], x[:, 1:]], dim=1)
        if self.pos_embed is not None:
            if start + tokens.shape[1] > self.config.max_length:
                raise ValueError(f"sequence longer than max_length={self.config.max_length}")
            x = x + self.pos_embed(torch.arange(start, start + tokens.shape[1], device=tokens.device))
        return self.head(self.stack(x, cache=cache))

    def _token_log_probs(self, batch: dict[str, torch.Tensor], constrained: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = batch["tokens"]
        condition = batch.get("condition") if self.config.conditions else None
        if condition is not None and self.training and self.config.condition_dropout > 0:
            drop = torch.rand(condition.shape[0], device=condition.device) < self.config.condition_dropout
            condition = condition.masked_fill(drop[:, None], float("nan"))
        logits = self(tokens[:, :-1], condition=condition)
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
        condition: dict[str, float | tuple[float, float]] | None = None,
        guidance: float | None = None,
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
            condition: A conditional model's property targets: a value, or a
                ``(low, high)`` range drawn uniformly per sample; every
                property of ``config.conditions`` or none (None: unconditional).
            guidance: Classifier-free guidance weight ``w``: logits
                ``u + (1 + w) (c - u)`` from the conditional (``c``) and
                unconditional (``u``) passes; 0 or None: conditional only.

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
        targets = self.condition_rows(n, condition, gen)
        if guidance and targets is None:
            raise MolgenError("guidance needs a condition to guide toward")
        results: list[list[int]] = []
        for start in range(0, n, batch_size):
            chunk = None if targets is None else targets[start:start + batch_size]
            results.extend(
                self._sample_chunk(min(batch_size, n - start), limit, gen, temperature, top_k, top_p, use_cache, grammar,
                                   constraint, chunk, guidance or 0.0)
            )
        self.train(was_training)
        return results

    def condition_rows(self, n: int, condition: dict | None, generator: torch.Generator) -> torch.Tensor | None:
        """``[n, k]`` targets from ``condition`` (values, or ranges drawn uniformly).

        Raises:
            MolgenError: a condition on an unconditional model, or names that
                are not exactly the model's conditions, or a bad range.
        """
        if not condition:
            return None
        names = list(self.config.conditions)
        if not names:
            raise MolgenError("this model was trained without conditions: sample it without --condition")
        if sorted(condition) != sorted(names):
            raise MolgenError(f"give every condition of this model ({', '.join(names)}), got {', '.join(sorted(condition))}")
        columns = []
        for name in names:
            value = condition[name]
            if isinstance(value, (tuple, list)):
                low, high = float(value[0]), float(value[1])
                if not low <= high:
                    raise MolgenError(f"condition {name}: range {low}:{high} has low > high")
                u = torch.rand(n, generator=generator, device=generator.device).to(self.device)
                columns.append(low + (high - low) * u)
            else:
                columns.append(torch.full((n,), float(value), device=self.device))
        return torch.stack(columns, -1)

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
        grammar: TokenGrammar | None = None,
    ) -> list[list[int]]:
        """Draw ``n`` sequences under ``constraint`` (e.g. a SMILES template:
        forced tokens and spans the model writes), each step renormalised
        over what it allows.

        Args:
            n: Number of sequences.
            constraint: The decoding constraint, reset per batch.
            batch_size, temperature, top_k, top_p, max_length, generator, seed:
                As in :meth:`sample_ids`.
            grammar: A token grammar followed as well (e.g. a crystal layout
                with its site lines fixed by a composition).

        Returns:
            Id lists without BOS and EOS.
        """
        was_training = self.training
        self.eval()
        gen = resolve_generator(generator, seed, self.device)
        limit = min(max_length or self.config.max_length, self.config.max_length)
        table = None if grammar is None else grammar.compile(self.domain.tokenizer.vocab).to(self.device)
        results: list[list[int]] = []
        for start in range(0, n, batch_size):
            results.extend(self._sample_chunk(min(batch_size, n - start), limit, gen, temperature, top_k, top_p, True,
                                              grammar=(table, None), constraint=constraint))
        self.train(was_training)
        return results

    def _sample_chunk(
        self, batch, limit, gen, temperature, top_k, top_p, use_cache, grammar=(None, None), constraint=None,
        condition=None, guidance=0.0,
    ) -> list[list[int]]:
        device = self.device
        # Under bf16 autocast keys and values come out in bf16: a cache in that dtype holds half the memory.
        autocast = torch.is_autocast_enabled(device.type)
        dtype = torch.get_autocast_dtype(device.type) if autocast else next(self.parameters()).dtype
        cache = self.stack.new_cache(batch, limit, device, dtype) if use_cache else None
        free = self.stack.new_cache(batch, limit, device, dtype) if use_cache and guidance else None

        def next_logits(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            rows = rows.to(device)
            here = None if condition is None else condition[rows]
            conditioned = self(tokens, cache=cache, condition=here)[:, -1]
            if not guidance:
                return conditioned
            unconditioned = self(tokens, cache=free)[:, -1]
            return unconditioned + (1.0 + guidance) * (conditioned - unconditioned)

        return decode_batch(
            next_logits, batch, limit, bos_id=self.bos_id, eos_id=self.eos_id, pad_id=self.pad_id, banned=self.banned,
            generator=gen, device=device, cache=cache if free is None else _CachePair(cache, free),
            temperature=temperature, top_k=top_k, top_p=top_p,
            grammar=grammar[0], state_temperature=grammar[1], constraint=constraint,
        )


BACKBONES.register("autoregressive", AutoregressiveTransformer)
