"""Sequence VAE over the tokens view: a bidirectional transformer encoder to a
Gaussian latent ``z``, and an autoregressive transformer decoder that reads
``z`` as a prefix of ``prefix_tokens`` learned vectors.

Posterior collapse (a strong autoregressive decoder ignoring ``z``) is held
off by linear KL annealing, free bits per latent dimension and optional
decoder token dropout (Bowman et al. 2016; Kingma et al. 2016).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from molgen.backbones.base import TokenGenerator, TransformerHParams
from molgen.core.registry import BACKBONES
from molgen.core.seeding import resolve_generator
from molgen.nn.decoding import decode_batch
from molgen.nn.transformer import TransformerStack, init_transformer_weights

LOG_2PI = math.log(2 * math.pi)


class VAEConfig(TransformerHParams):
    """Hyper-parameters of :class:`SequenceVAE` (``n_layers`` is the decoder's depth)."""

    latent_dim: int = Field(64, gt=0, description="size of z")
    encoder_layers: int | None = Field(None, gt=0, description="encoder depth (default n_layers)")
    prefix_tokens: int = Field(4, gt=0, description="decoder prefix vectors made from z")
    kl_weight: float = Field(1.0, ge=0, description="final weight of the KL term (beta)")
    kl_warmup_steps: int = Field(2000, ge=0, description="training steps of linear KL annealing from 0")
    free_bits: float = Field(0.05, ge=0, description="nats per latent dimension not penalised (batch mean)")
    token_dropout: float = Field(0.0, ge=0, lt=1, description="decoder inputs replaced by MASK in training")
    iw_samples: int = Field(1, gt=0, description="importance samples of log_likelihood (1: the ELBO)")


class SequenceVAE(TokenGenerator):
    """Transformer VAE generator.

    ``loss`` in training is the annealed, free-bits objective per token; in
    eval mode it is the plain negative ELBO per token, comparable with the
    autoregressive model's NLL. ``log_likelihood`` is the ELBO (or the
    importance-weighted bound with ``iw_samples > 1``) from seeded draws of
    ``z``, so it is deterministic.
    """

    name = "vae"
    config_cls = VAEConfig

    def __init__(self, domain, config: VAEConfig):
        super().__init__(domain, config)
        self._bind_vocabulary(banned=("pad", "bos", "mask", "unk"))
        # Training steps seen, for KL annealing; saved so a resumed run continues the ramp.
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))
        c = config
        d_ff = c.d_ff or 4 * c.d_model
        self.embed = nn.Embedding(self.vocab_size, c.d_model)
        self.encoder = TransformerStack(c.encoder_layers or c.n_layers, c.d_model, c.n_heads, d_ff, c.dropout, causal=False)
        self.to_posterior = nn.Linear(c.d_model, 2 * c.latent_dim)
        self.to_prefix = nn.Linear(c.latent_dim, c.prefix_tokens * c.d_model)
        self.decoder = TransformerStack(c.n_layers, c.d_model, c.n_heads, d_ff, c.dropout, causal=True)
        self.head = nn.Linear(c.d_model, self.vocab_size, bias=False)
        self.head.weight = self.embed.weight
        self.apply(init_transformer_weights)

    # -- encoder ------------------------------------------------------------
    def _as_batch(self, data) -> dict[str, torch.Tensor]:
        return data if isinstance(data, dict) else self.make_batch(list(data))

    def encode(self, data: dict[str, torch.Tensor] | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``q(z | x)`` of each sequence.

        Args:
            data: A token batch or a list of texts.

        Returns:
            ``(mean, log_variance)``, each ``[B, latent_dim]``.
        """
        batch = self._as_batch(data)
        mask = batch["mask"].bool()
        h = self.encoder(self.embed(batch["tokens"]), key_padding_mask=mask)
        weights = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1)
        mean, log_var = self.to_posterior(pooled).float().chunk(2, dim=-1)
        return mean, log_var.clamp(-10.0, 6.0)

    # -- decoder --------------------------------------------------------------
    def _prefix(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self.to_prefix(z.to(self.embed.weight.dtype)).view(z.shape[0], c.prefix_tokens, c.d_model)

    def _decoder_log_probs(self, tokens: torch.Tensor, mask: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` per sequence, ``[B]`` (BOS excluded, EOS included)."""
        inputs = tokens[:, :-1]
        if self.training and self.config.token_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.config.token_dropout
            drop[:, 0] = False  # BOS stays
            inputs = torch.where(drop, self.mask_id, inputs)
        x = torch.cat([self._prefix(z), self.embed(inputs)], dim=1)
        logits = self.head(self.decoder(x)[:, self.config.prefix_tokens :])
        log_probs = -F.cross_entropy(logits.transpose(1, 2).float(), tokens[:, 1:], reduction="none")
        return (log_probs * mask[:, 1:]).sum(-1)

    # -- objectives ---------------------------------------------------------
    def kl_beta(self) -> float:
        """Current KL weight of the annealing ramp."""
        c = self.config
        if c.kl_warmup_steps == 0:
            return c.kl_weight
        return c.kl_weight * min(1.0, float(self.anneal_step) / c.kl_warmup_steps)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Negative ELBO per predicted token (annealed with free bits in training).

        Returns:
            ``{"loss", "tokens", "reconstruction", "kl"}`` (the last two in
            nats per sequence).
        """
        mean, log_var = self.encode(batch)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        rec = -self._decoder_log_probs(batch["tokens"], batch["mask"], z)
        kl_dims = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)  # [B, D]
        count = batch["mask"][:, 1:].sum()
        n = rec.shape[0]
        if self.training and torch.is_grad_enabled():
            kl_term = kl_dims.mean(0).clamp(min=self.config.free_bits).sum() * n
            objective = rec.sum() + self.kl_beta() * kl_term
            self.anneal_step += 1
        else:
            objective = rec.sum() + kl_dims.sum()
        return {
            "loss": objective / count.clamp(min=1),
            "tokens": count,
            "reconstruction": rec.mean().detach(),
            "kl": kl_dims.sum(-1).mean().detach(),
        }

    @torch.no_grad()
    def log_likelihood(self, batch: dict[str, torch.Tensor], samples: int | None = None) -> torch.Tensor:
        """Lower bound on ``log p(x)`` per sequence, ``[B]``.

        Args:
            batch: Token batch.
            samples: Importance samples (default ``config.iw_samples``); 1 gives
                the ELBO, more the tighter IWAE bound (Burda et al. 2016).

        Returns:
            The bound in nats.
        """
        k = samples or self.config.iw_samples
        mean, log_var = self.encode(batch)
        std = (0.5 * log_var).exp()
        gen = torch.Generator(device=mean.device).manual_seed(0)
        if k == 1:
            z = mean + std * torch.randn(mean.shape, generator=gen, device=mean.device)
            kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
            return self._decoder_log_probs(batch["tokens"], batch["mask"], z) - kl
        weights = []
        for _ in range(k):
            eps = torch.randn(mean.shape, generator=gen, device=mean.device)
            z = mean + std * eps
            log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
            log_post = -0.5 * (eps.pow(2) + LOG_2PI + log_var).sum(-1)
            weights.append(self._decoder_log_probs(batch["tokens"], batch["mask"], z) + log_prior - log_post)
        return torch.logsumexp(torch.stack(weights), 0) - math.log(k)

    # -- generation -----------------------------------------------------------
    @torch.inference_mode()
    def decode_ids(
        self,
        z: torch.Tensor,
        *,
        batch_size: int = 512,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        constrained: bool | None = None,
        field_temperature: dict[str, float] | None = None,
        semantic: bool | None = None,
    ) -> list[list[int]]:
        """Decode latent vectors to token ids (without BOS/EOS).

        Args:
            z: ``[N, latent_dim]`` latents.
            batch_size: Sequences decoded together.
            temperature: 0 (default) decodes greedily, the usual choice for
                reconstruction and optimisation; > 0 samples.
            top_k, top_p: Filters for sampling.
            max_length: Longest sequence incl. BOS/EOS (default: the model's).
            generator: Randomness for temperature > 0.
            seed: Seed when ``generator`` is None.
            constrained: Follow the domain's token grammar (every finished
                sequence is well formed).
                None (default): when the domain has a grammar (crystals).
            field_temperature: With ``constrained``, temperatures of named
                grammar fields in place of ``temperature``.
            semantic: With ``constrained``, also enforce the domain's
                decoding constraint (crystals: no atom within the validity
                distance of an earlier one). None (default): when
                constrained and the domain has one.

        Returns:
            One id list per row of ``z``.
        """
        was_training = self.training
        self.eval()
        device = self.device
        gen = resolve_generator(generator, seed, device)
        limit = min(max_length or self.config.max_length, self.config.max_length)
        z = z.to(device)
        constrained, semantic = self.grammar_flags(constrained, semantic)
        grammar = self.grammar_tensors(constrained, field_temperature, temperature)
        constraint = self.decoding_constraint(semantic, constrained)
        out: list[list[int]] = []
        for start in range(0, z.shape[0], batch_size):
            out.extend(self._decode_chunk(z[start : start + batch_size], limit, gen, temperature, top_k, top_p, grammar, constraint))
        self.train(was_training)
        return out

    def _decode_chunk(self, z, limit, gen, temperature, top_k, top_p, grammar=(None, None), constraint=None) -> list[list[int]]:
        device = self.device
        prefix = self._prefix(z)
        cache = self.decoder.new_cache(z.shape[0], self.config.prefix_tokens + limit, device, prefix.dtype)

        def next_logits(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            x = self.embed(tokens)
            if cache.length == 0:  # first step: the latent prefix, then BOS
                x = torch.cat([prefix[rows], x], dim=1)
            return self.head(self.decoder(x, cache=cache)[:, -1])

        return decode_batch(
            next_logits, z.shape[0], limit, bos_id=self.bos_id, eos_id=self.eos_id, pad_id=self.pad_id,
            banned=self.banned, generator=gen, device=device, cache=cache,
            temperature=temperature, top_k=top_k, top_p=top_p, grammar=grammar[0], state_temperature=grammar[1],
            constraint=constraint,
        )

    def decode(self, z: torch.Tensor, **kwargs) -> list[str]:
        """Decode latents to texts (see :meth:`decode_ids`; greedy by default)."""
        tokenizer = self.domain.tokenizer
        return [tokenizer.decode(ids) for ids in self.decode_ids(z, **kwargs)]

    def prior_sample(self, n: int, generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
        """``n`` latents from the standard-normal prior, ``[n, latent_dim]``."""
        gen = resolve_generator(generator, seed, self.device)
        return torch.randn((n, self.config.latent_dim), generator=gen, device=self.device)

    def sample_ids(self, n: int, *, generator: torch.Generator | None = None, seed: int | None = None, temperature: float = 1.0, **kwargs) -> list[list[int]]:
        """Draw ``n`` sequences: ``z`` from the prior, then the decoder samples at ``temperature``."""
        gen = resolve_generator(generator, seed, self.device)
        z = self.prior_sample(n, generator=gen)
        kwargs.pop("use_cache", None)
        return self.decode_ids(z, generator=gen, temperature=temperature, **kwargs)

    @torch.no_grad()
    def interpolate(self, start: str, end: str, steps: int = 8, spherical: bool = True, **decode_kwargs) -> list[str]:
        """Decode points on the path between two objects' posterior means.

        Args:
            start: Text of the first object.
            end: Text of the second object.
            steps: Points including both ends.
            spherical: Slerp (keeps points at the prior's typical norm)
                instead of a straight line.
            **decode_kwargs: Passed to :meth:`decode` (greedy by default).

        Returns:
            ``steps`` decoded texts, ``start``'s reconstruction first.
        """
        mean, _ = self.encode([start, end])
        a, b = mean[0], mean[1]
        weights = torch.linspace(0, 1, steps, device=mean.device)[:, None]
        if spherical:
            omega = torch.arccos(torch.clamp(F.cosine_similarity(a, b, dim=0), -1 + 1e-6, 1 - 1e-6))
            path = (torch.sin((1 - weights) * omega) * a + torch.sin(weights * omega) * b) / torch.sin(omega)
        else:
            path = (1 - weights) * a + weights * b
        return self.decode(path, **decode_kwargs)


BACKBONES.register("vae", SequenceVAE)
