"""Absorbing-state (masking) noise for discrete diffusion over tokens.

At time ``t`` in [0, 1] each token is still clean with probability
``alpha(t)`` and replaced by MASK otherwise; ``alpha(0) = 1`` and
``alpha(1) = 0``. The continuous-time ELBO (Sahoo et al. 2024, MDLM; Shi et
al. 2024) weights the cross-entropy of the masked positions by
``-alpha'(t) / (1 - alpha(t))``.
"""

from __future__ import annotations

import math

import torch

from molgen.schedulers.base import Noise
from molgen.schedulers.categorical import sample_categorical


class MaskingSchedule(Noise):
    """A masking schedule; its prediction is the clean-token probabilities
    ``[..., V]``.

    Args:
        kind: ``"linear"`` (``alpha = 1 - t``) or ``"cosine"``
            (``alpha = cos(pi t / 2)``, masks fewer tokens early).
        eps: Smallest ``t`` drawn in training (keeps the weight finite).
        mask_id: The MASK token id (needed to corrupt and to start sampling).
    """

    KINDS = ("linear", "cosine")

    def __init__(self, kind: str = "linear", eps: float = 1e-3, mask_id: int | None = None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown masking schedule {kind!r}; use one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.eps = eps
        self.mask_id = mask_id

    def _mask(self) -> int:
        if self.mask_id is None:
            raise ValueError("this masking schedule has no mask_id")
        return self.mask_id

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a token is still clean at time ``t``."""
        if self.kind == "linear":
            return 1.0 - t
        return torch.cos(0.5 * math.pi * t)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """ELBO weight ``-alpha'(t) / (1 - alpha(t))`` of a masked token at ``t``."""
        if self.kind == "linear":
            return 1.0 / t
        return 0.5 * math.pi * torch.sin(0.5 * math.pi * t) / (1.0 - torch.cos(0.5 * math.pi * t))

    def sample_times(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """``n`` training times, stratified over ``[eps, 1]`` (lower-variance ELBO)."""
        u = (torch.arange(n, device=device) + torch.rand(n, generator=generator, device=device)) / n
        u = u[torch.randperm(n, generator=generator, device=device)]
        return self.eps + (1.0 - self.eps) * u

    def unmask_probability(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Probability that a token masked at ``t`` is revealed by ``s < t``."""
        return (self.alpha(s) - self.alpha(t)) / (1.0 - self.alpha(t)).clamp(min=1e-12)

    def add_noise(
        self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None, maskable: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask each token with probability ``1 - alpha(t)``.

        Args:
            x0: Clean ids ``[B, L]``.
            t: Times ``[B]``.
            generator: Source of randomness (one uniform per position, masked or not).
            maskable: Positions that may be masked (default all).

        Returns:
            ``(x_t, masked)``: the canvas and the masked positions (where the loss is).
        """
        noise = torch.rand(x0.shape, generator=generator, device=x0.device)
        masked = noise > self.alpha(t).reshape(-1, *([1] * (x0.dim() - 1)))
        if maskable is not None:
            masked = masked & maskable
        return torch.where(masked, self._mask(), x0), masked

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """An all-MASK canvas (draws nothing)."""
        return torch.full(shape, self._mask(), dtype=torch.long, device=device)

    def reverse_step(self, xt: torch.Tensor, p0: torch.Tensor, s: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reveal each masked token with :meth:`unmask_probability` as an id drawn from ``p0``
        (the ancestral MDLM step; the masked-diffusion backbone adds orders and caching)."""
        proposal = sample_categorical(p0, generator)
        reveal = torch.rand(xt.shape, generator=generator, device=xt.device) < self.unmask_probability(t, s).reshape(-1, *([1] * (xt.dim() - 1)))
        return torch.where((xt == self._mask()) & reveal, proposal, xt)

    def posterior_kl(self, x0: torch.Tensor, xt: torch.Tensor, p0: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per token: a masked token is revealed by ``s`` with probability
        :meth:`unmask_probability`, which then pays ``-log p0(x_0)``; given tokens pay nothing."""
        shape = (-1, *([1] * (xt.dim() - 1)))
        nll = -torch.log(p0.gather(-1, x0.unsqueeze(-1)).squeeze(-1).clamp(min=1e-12))
        return (xt == self._mask()).float() * self.unmask_probability(t, s).reshape(shape) * nll
