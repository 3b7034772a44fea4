"""Variance-preserving Gaussian noise (DDPM) on continuous vectors such as
lattice parameters: ``x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps``
with the cosine schedule; the model predicts ``eps`` and the reverse step
between any ``s < t`` is the Gaussian posterior with ``x_0`` replaced by the
estimate that ``eps`` implies."""

from __future__ import annotations

import torch

from molgen.schedulers.base import Noise
from molgen.schedulers.categorical import cosine_alpha_bar

# alpha_bar is clamped away from 0 so that x_0 = (x_t - sqrt(1-a) eps)/sqrt(a) stays finite.
_MIN_ALPHA_BAR = 1e-5


class GaussianNoise(Noise):
    """DDPM noise with the cosine schedule in continuous time ``t`` in [0, 1];
    the prediction is the noise ``eps``.

    Args:
        clip_x0: Clamp the estimated ``x_0`` to ``[-clip_x0, clip_x0]`` in
            :meth:`reverse_step` (diffusers' ``clip_sample``; None: no clamp).
            The ELBO terms never clamp.
    """

    def __init__(self, clip_x0: float | None = None):
        self.clip_x0 = clip_x0

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """Signal fraction ``alpha_bar(t)``."""
        return cosine_alpha_bar(t).clamp(min=_MIN_ALPHA_BAR)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_t`` and the noise ``eps`` that made it (the target).

        Args:
            x0: Clean vectors ``[B, D]``.
            t: Times ``[B]``.
        """
        a = self.alpha_bar(t).unsqueeze(-1)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps, eps

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Standard normal vectors of ``shape``."""
        return torch.randn(shape, generator=generator, device=device)

    def predict_x0(self, xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_0`` implied by a noise estimate."""
        a = self.alpha_bar(t).unsqueeze(-1)
        return (xt - (1 - a).sqrt() * eps) / a.sqrt()

    def posterior(self, xt: torch.Tensor, x0: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_s | x_t, x_0)`` (variance ``[B, 1]``)."""
        a_t, a_s = self.alpha_bar(t).unsqueeze(-1), self.alpha_bar(s).unsqueeze(-1)
        a_ts = a_t / a_s
        var = (1 - a_ts) * (1 - a_s) / (1 - a_t)
        mean = (a_s.sqrt() * (1 - a_ts) * x0 + a_ts.sqrt() * (1 - a_s) * xt) / (1 - a_t)
        return mean, var.clamp(min=1e-12)

    def reverse_step(self, xt: torch.Tensor, eps: torch.Tensor, s: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``x_s`` from the posterior with the ``x_0`` that ``eps`` implies
        (clamped by ``clip_x0``); the mean only at ``s = 0``."""
        x0_hat = self.predict_x0(xt, eps, t)
        if self.clip_x0 is not None:
            x0_hat = x0_hat.clamp(-self.clip_x0, self.clip_x0)
        mean, var = self.posterior(xt, x0_hat, s, t)
        noise = torch.randn(xt.shape, generator=generator, device=xt.device)
        last = (s <= 0).float().unsqueeze(-1)
        return mean + (1 - last) * var.sqrt() * noise

    def posterior_kl(self, x0: torch.Tensor, xt: torch.Tensor, eps: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-example KL between the true and the model's reverse Gaussians
        (same variance), summed over dimensions ``[B]``; at ``s = 0`` the
        Gaussian negative log-density of ``x_0`` under the model's last step
        (with the posterior variance of the first grid step, DDPM's choice)."""
        mean_q, var = self.posterior(xt, x0, s, t)
        mean_p, _ = self.posterior(xt, self.predict_x0(xt, eps, t), s, t)
        return ((mean_q - mean_p) ** 2 / (2 * var)).sum(-1)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """``KL(q(x_1 | x_0) || N(0, I))`` per example ``[B]``."""
        a = torch.tensor(_MIN_ALPHA_BAR, device=x0.device)
        mean2 = a * x0**2
        var = 1 - a
        return 0.5 * (var + mean2 - 1 - torch.log(var)).sum(-1)
