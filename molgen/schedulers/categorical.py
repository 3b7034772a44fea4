"""Discrete noise on categorical types (nodes, edges) for graph diffusion.

Each category is kept with probability ``alpha_bar(t)`` and otherwise
redrawn from a limit distribution ``m``: ``q(x_t | x_0) = alpha_bar(t) x_0 +
(1 - alpha_bar(t)) m`` (rows are one-hot / probability vectors). With ``m``
the data's marginal this is DiGress's marginal transition (Vignac et al.
2023), with ``m`` uniform the D3PM uniform transition (Austin et al. 2021).
Between two times ``s < t`` the transition has the same form with
``alpha = alpha_bar(t) / alpha_bar(s)``, so the posterior ``q(x_s | x_t,
x_0)`` and the reverse step are closed-form for any number of sampling steps.
"""

from __future__ import annotations

import math

import torch

from molgen.schedulers.base import Noise


def cosine_alpha_bar(t: torch.Tensor, offset: float = 0.008) -> torch.Tensor:
    """Nichol and Dhariwal's cosine schedule, ``alpha_bar(0) = 1``, ``alpha_bar(1) = 0``."""
    f = torch.cos(0.5 * math.pi * (t + offset) / (1 + offset)) ** 2
    f0 = math.cos(0.5 * math.pi * offset / (1 + offset)) ** 2
    return (f / f0).clamp(0.0, 1.0)


class CategoricalNoise(Noise):
    """Transition noise over ``K`` categories; its prediction is the clean-type
    probabilities ``p(x_0 | x_t)`` ``[..., K]``.

    Args:
        limit: The limit distribution ``m`` ``[K]`` (non-negative, normalised
            here); e.g. the training marginal.
    """

    def __init__(self, limit: torch.Tensor):
        limit = torch.as_tensor(limit, dtype=torch.float32).clamp(min=0)
        if limit.ndim != 1 or limit.numel() < 2 or float(limit.sum()) <= 0:
            raise ValueError("the limit distribution needs at least two categories with positive mass")
        self.limit = limit / limit.sum()

    @classmethod
    def uniform(cls, k: int) -> "CategoricalNoise":
        """D3PM uniform transitions over ``k`` categories."""
        return cls(torch.ones(k))

    @property
    def num_classes(self) -> int:
        """Number of categories."""
        return int(self.limit.numel())

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a category is untouched at time ``t``."""
        return cosine_alpha_bar(t)

    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)`` as probabilities ``[..., K]``.

        Args:
            x0: Clean category ids ``[B, ...]``.
            t: Times ``[B]``.
        """
        a = self.alpha_bar(t).reshape(-1, *([1] * x0.dim()))
        onehot = torch.nn.functional.one_hot(x0, self.num_classes).float()
        return a * onehot + (1 - a) * self.limit.to(x0.device)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, None]:
        """Draw ``x_t`` ids from ``q(x_t | x_0)`` (same shape as ``x0``); the target is ``x_0`` (None)."""
        return sample_categorical(self.marginal(x0, t), generator), None

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Draw ids of ``shape`` from the limit distribution (the start of sampling)."""
        probs = self.limit.to(device).expand(*shape, self.num_classes)
        return sample_categorical(probs, generator)

    def reverse_probs(self, xt: torch.Tensor, p0: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``p(x_s | x_t) = sum_k q(x_s | x_t, x_0 = k) p(x_0 = k | x_t)``.

        Args:
            xt: Noisy ids ``[B, ...]``.
            p0: Predicted clean probabilities ``[B, ..., K]``.
            s: Earlier times ``[B]`` (``s < t``; at ``s = 0`` the result is ``p0`` itself).
            t: Current times ``[B]``.

        Returns:
            Probabilities ``[B, ..., K]`` of ``x_s``.
        """
        shape = (-1, *([1] * xt.dim()))
        a_t, a_s = self.alpha_bar(t).reshape(shape), self.alpha_bar(s).reshape(shape)
        a_ts = a_t / a_s.clamp(min=1e-12)
        m = self.limit.to(xt.device)
        onehot_t = torch.nn.functional.one_hot(xt, self.num_classes).float()
        m_xt = m[xt].unsqueeze(-1)  # m evaluated at x_t
        # q(x_t | x_s = i) for every i, and q(x_t | x_0 = k) for every k.
        forward = a_ts * onehot_t + (1 - a_ts) * m_xt
        z = a_t * onehot_t + (1 - a_t) * m_xt
        ratio = p0 / z.clamp(min=1e-12)
        mix = a_s * ratio + (1 - a_s) * m * ratio.sum(-1, keepdim=True)
        probs = forward * mix
        return probs / probs.sum(-1, keepdim=True).clamp(min=1e-12)

    def reverse_step(self, xt: torch.Tensor, p0: torch.Tensor, s: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``x_s`` ids from :meth:`reverse_probs`."""
        return sample_categorical(self.reverse_probs(xt, p0, s, t), generator)

    def posterior_kl(self, x0: torch.Tensor, xt: torch.Tensor, p0: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``KL(q(x_s | x_t, x_0) || p(x_s | x_t))`` per element ``[B, ...]`` (nats).

        At ``s = 0`` the true posterior is a point mass and this is
        ``-log p(x_0 | x_t)``, the reconstruction term.
        """
        onehot0 = torch.nn.functional.one_hot(x0, self.num_classes).float()
        q = self.reverse_probs(xt, onehot0, s, t)
        p = self.reverse_probs(xt, p0, s, t)
        return (q * (torch.log(q.clamp(min=1e-12)) - torch.log(p.clamp(min=1e-12)))).sum(-1)


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per row of ``probs`` ``[..., K]``."""
    flat = probs.reshape(-1, probs.shape[-1])
    ids = torch.multinomial(flat.clamp(min=0) + 1e-20, 1, generator=generator).squeeze(-1)
    return ids.reshape(probs.shape[:-1])
