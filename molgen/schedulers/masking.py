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


class MaskingSchedule:
    """A masking schedule.

    Args:
        kind: ``"linear"`` (``alpha = 1 - t``) or ``"cosine"``
            (``alpha = cos(pi t / 2)``, masks fewer tokens early).
        eps: Smallest ``t`` drawn in training (keeps the weight finite).
    """

    KINDS = ("linear", "cosine")

    def __init__(self, kind: str = "linear", eps: float = 1e-3):
        if kind not in self.KINDS:
            raise ValueError(f"unknown masking schedule {kind!r}; use one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.eps = eps

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
